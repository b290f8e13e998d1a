package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@code .vimgfs/holds.json} across crashes: a process that dies at any step of {@code hold add}
 * leaves the old holds or the new, never a torn or missing file; an acknowledged hold survives
 * SIGKILL; and no image a hold keeps is collected by a gc running while the hold is written.
 */
class HoldsCrashTest {
    /** From this step on the new holds file is the one in place. */
    private static final Set<CrashPoint> REPLACED = EnumSet.of(CrashPoint.HOLDS_RENAMED, CrashPoint.HOLDS_SYNCED);

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, mode = EnumSource.Mode.MATCH_ALL, names = "HOLDS_.*")
    void aCrashWhileAddingAHoldLeavesTheOldHoldsOrTheNew(CrashPoint point) throws Exception {
        Path root = storeWithKeptAndGolden();
        byte[] before = Files.readAllBytes(root.resolve(".vimgfs/holds.json"));

        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), point.name(),
                "hold", "golden:1", "golden image");

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), () -> "the child should halt at " + point + ":\n" + child.output());
        if (!REPLACED.contains(point)) {
            assertArrayEquals(before, Files.readAllBytes(root.resolve(".vimgfs/holds.json")), "the old holds file, untouched");
        }
        StoreFiles.assertConsistent(root); // opens, fsck clean, gc removes the temporary holds file
        try (ImageStore store = ImageStore.open(root)) {
            Map<String, String> held = heldImages(store);
            Map<String, String> expected = new TreeMap<>(Map.of(digestOf(store, "keep:1"), "old hold"));
            if (REPLACED.contains(point)) {
                expected.put(digestOf(store, "golden:1"), "golden image");
            }
            assertEquals(expected, held, "the holds are the old ones or the new ones, whole");
            assertHoldsKeepImages(store, held.keySet());
        }
    }

    /**
     * A {@code vimgfs rm golden:1} (untag, then gc) started while another process is stopped at a
     * step of {@code hold add golden:1} waits for it, and then the hold keeps the image.
     */
    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, mode = EnumSource.Mode.MATCH_ALL, names = "HOLDS_.*")
    void anImageBeingHeldIsNotCollectedByAConcurrentRemovalAndGc(CrashPoint point) throws Exception {
        Path root = storeWithKeptAndGolden();
        Process holder = CrashingImporter.command(true, "pause", root.toString(), point.name(),
                "hold", "golden:1", "golden image").start();
        BufferedReader holderOut = reader(holder);
        assertEquals("ready", holderOut.readLine());
        assertEquals("paused at " + point, holderOut.readLine());

        Process remover = CrashingImporter.command(true, "rm", root.toString(), "golden:1").start();
        assertTrue(remover.isAlive() && !remover.waitFor(1, TimeUnit.SECONDS),
                "the removal waits while the hold is being written");
        try (OutputStream in = holder.getOutputStream()) {
            in.write('\n');
        }
        assertEquals("done", holderOut.readLine(), "hold add is acknowledged");
        assertEquals(0, holder.waitFor());
        String removed = new String(remover.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, remover.waitFor(), removed);
        assertTrue(removed.contains("removed golden:1"), removed);

        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertTrue(!after.has("golden:1"), "the name is gone");
        try (ImageStore store = ImageStore.open(root)) {
            Map<String, String> held = heldImages(store);
            assertEquals(2, held.size(), held::toString);
            assertTrue(held.containsValue("golden image"), held::toString);
            for (String digest : held.keySet()) {
                assertTrue(store.image(Digest.parse(digest)).isPresent(), digest + " is held and must stay, nameless");
                assertTrue(Files.exists(StoreFiles.blob(root, Digest.parse(digest).hex())));
            }
        }
    }

    /**
     * SIGKILL while a process holds and releases images as fast as it can: every hold it reported
     * made or ended is so afterwards (only the one in flight may have gone either way), the store
     * is consistent, and after all names go exactly the held images stay.
     */
    @Test
    void everyAcknowledgedHoldSurvivesSigkill() throws Exception {
        Path root = dir.resolve("store");
        int images = 4;
        try (ImageStore store = ImageStore.open(root)) {
            for (int i = 0; i < images; i++) {
                store.importStream(new java.io.ByteArrayInputStream(StoreFiles.bytes("base " + i, 64 * 1024)),
                        Reference.parse("base:" + i), n -> { });
            }
        }
        Map<String, Boolean> heldByName = new HashMap<>();
        for (int round = 0; round < 4; round++) {
            Process child = CrashingImporter.command(true, "holds", root.toString(), Integer.toString(images)).start();
            BufferedReader out = reader(child);
            assertEquals("ready", out.readLine());
            int wanted = 7 + round * 9;
            List<String> acknowledged = new ArrayList<>();
            while (acknowledged.size() < wanted) {
                acknowledged.add(out.readLine());
            }
            child.toHandle().destroyForcibly(); // SIGKILL, keeping its output (Process.destroyForcibly closes it)
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            out.lines().forEach(acknowledged::add); // what it acknowledged before the kill landed
            out.close();
            for (String line : acknowledged) {
                String[] words = line.split(" ");
                heldByName.put(words[1], words[0].equals("held"));
            }
            String inFlight = "base:" + acknowledged.size() % images;

            StoreFiles.assertConsistent(root);
            try (ImageStore store = ImageStore.open(root)) {
                Map<String, String> held = heldImages(store);
                for (int i = 0; i < images; i++) {
                    String name = "base:" + i;
                    boolean isHeld = held.containsKey(digestOf(store, name));
                    if (!name.equals(inFlight)) {
                        assertEquals(heldByName.getOrDefault(name, false), isHeld,
                                name + ": its last acknowledged hold add or rm does not hold after the kill");
                    }
                    heldByName.put(name, isHeld);
                }
            }
        }
        try (ImageStore store = ImageStore.open(root)) {
            assertHoldsKeepImages(store, heldImages(store).keySet());
        }
    }

    /** A store with keep:1, held as "old hold", and golden:1, unheld. */
    private Path storeWithKeptAndGolden() throws IOException {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("keep.img"), StoreFiles.bytes("keep", MIB)), Reference.parse("keep:1"), n -> { });
            store.importFile(Files.write(dir.resolve("golden.img"), StoreFiles.bytes("golden", MIB)), Reference.parse("golden:1"), n -> { });
            store.hold("keep:1", "old hold");
        }
        return root;
    }

    /** The digests the store's image holds name, with their reasons (automatic overlay holds left out). */
    private static Map<String, String> heldImages(ImageStore store) throws IOException {
        Map<String, String> held = new TreeMap<>();
        for (Hold hold : store.holds()) {
            if (hold instanceof Hold.Image image) {
                held.put(image.digest().toString(), image.why());
            }
        }
        return held;
    }

    /** What an operator sees after removing every name and running gc: exactly the held images stay. */
    private static void assertHoldsKeepImages(ImageStore store, Set<String> held) throws IOException {
        List<String> all = new ArrayList<>();
        for (ImageInfo image : store.list()) {
            all.add(image.digest().toString());
            for (ImageName name : image.names()) {
                store.untag(name);
            }
        }
        store.collectGarbage(false);
        for (String digest : all) {
            assertEquals(held.contains(digest), store.image(Digest.parse(digest)).isPresent(),
                    digest + (held.contains(digest) ? " is held and was collected" : " is not held and stayed"));
        }
    }

    private static String digestOf(ImageStore store, String name) throws IOException {
        return store.resolve(name).digest().toString();
    }

    private static BufferedReader reader(Process process) {
        return new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    }
}
