package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@code .vimgfs/last-use.json} across crashes of the mount's housekeeping: the file left is
 * the old one or the new one, whole; the store opens and fsck is clean; and a damaged or lost
 * file never costs an image (only the last-use times prune reads).
 */
class LastUseCrashTest {
    private static final Instant EARLIER = Instant.parse("2024-01-01T00:00:00Z");
    private static final Set<CrashPoint> REPLACED = EnumSet.of(CrashPoint.LAST_USE_RENAMED, CrashPoint.LAST_USE_SYNCED);

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, mode = EnumSource.Mode.MATCH_ALL, names = "LAST_USE_.*")
    void aCrashWhileWritingLastUsesLeavesTheOldFileOrTheNew(CrashPoint point) throws Exception {
        Path root = storeUsedEarlier();
        Path file = root.resolve(".vimgfs/last-use.json");
        byte[] before = Files.readAllBytes(file);

        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), point.name(), "uses");

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), () -> "the child should halt at " + point + ":\n" + child.output());
        Map<String, Instant> uses = parse(file);
        if (REPLACED.contains(point)) {
            assertEquals(2, uses.size(), "the new file, with both images: " + uses);
            assertTrue(uses.values().stream().allMatch(EARLIER::isBefore), "both used now: " + uses);
        } else {
            assertArrayEquals(before, Files.readAllBytes(file), "the old file, untouched");
        }
        StoreFiles.Outcome after = StoreFiles.assertConsistent(root); // gc removes the temporary file
        assertTrue(after.has("a:1") && after.has("b:1"), "no image is lost: " + after.names());
    }

    /** A last-use.json torn by something else (a store copied mid-write, a filesystem that lost it). */
    @Test
    void aDamagedLastUseFileCostsNoImageAndTheNextWriteReplacesIt() throws Exception {
        Path root = storeUsedEarlier();
        Path file = root.resolve(".vimgfs/last-use.json");
        byte[] whole = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(whole, whole.length / 2));

        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertTrue(after.has("a:1") && after.has("b:1"), after.names()::toString);
        try (ImageStore store = ImageStore.open(root)) {
            PruneReport dry = store.prune(new PrunePolicy(java.util.OptionalInt.empty(), java.util.Optional.of(java.time.Duration.ofDays(1)), java.util.Optional.empty()), true);
            assertEquals(2, dry.decisions().size(), "prune still decides, counting from placement: " + dry);
            store.recordUse(store.resolve("b:1").digest());
            assertTrue(store.persistUses(true));
        }
        assertEquals(1, parse(file).size(), "the next write replaced the damaged file with a whole one");
    }

    /**
     * SIGKILL while a process writes last uses as fast as it can: the file is whole JSON naming
     * every image, the store is consistent, and no image is lost.
     */
    @Test
    void lastUseFileIsWholeAfterSigkillMidWrite() throws Exception {
        Path root = storeUsedEarlier();
        for (int round = 0; round < 4; round++) {
            Process child = CrashingImporter.command(true, "uses", root.toString()).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("ready", out.readLine());
            int wanted = 5 + round * 20;
            for (int i = 0; i < wanted; i++) {
                assertTrue(out.readLine().startsWith("persisted "));
            }
            child.destroyForcibly();
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            out.close();

            Map<String, Instant> uses = parse(root.resolve(".vimgfs/last-use.json"));
            assertEquals(2, uses.size(), uses::toString);
            assertTrue(uses.values().stream().allMatch(EARLIER::isBefore), "an acknowledged write is there: " + uses);
            StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
            assertTrue(after.has("a:1") && after.has("b:1"), after.names()::toString);
        }
    }

    /** A store of a:1 and b:1 whose last-use.json says a:1 was used at {@link #EARLIER}. */
    private Path storeUsedEarlier() throws IOException {
        Path root = dir.resolve("store");
        StoreOptions options = StoreOptions.defaults().withClock(Clock.fixed(EARLIER, ZoneOffset.UTC));
        try (ImageStore store = ImageStore.open(root, options)) {
            ImageInfo a = store.importFile(Files.write(dir.resolve("a.img"), StoreFiles.bytes("a", MIB)), Reference.parse("a:1"), n -> { });
            store.importFile(Files.write(dir.resolve("b.img"), StoreFiles.bytes("b", MIB)), Reference.parse("b:1"), n -> { });
            store.recordUse(a.digest());
            assertTrue(store.persistUses(true));
        }
        return root;
    }

    /** The file as JSON, every entry a digest and an instant; fails if it is torn. */
    private static Map<String, Instant> parse(Path file) throws IOException {
        JsonNode root = StoreFiles.json(file);
        assertTrue(root.isObject(), () -> file + " is not a JSON object: " + root);
        Map<String, Instant> uses = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            Digest.parse(entry.getKey());
            uses.put(entry.getKey(), Instant.parse(entry.getValue().asText()));
        }
        return uses;
    }
}
