package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * SPEC §7: a process that dies at any step of a commit leaves a store that opens, whose every
 * name has its bytes, that fsck calls clean, and whose leftovers one gc removes.
 */
class CrashTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(CrashPoint.class)
    void aCrashAtAnyStepLeavesAConsistentStore(CrashPoint point) throws Exception {
        Path root = dir.resolve("store");
        Path incoming = Files.write(dir.resolve("new.img"), StoreFiles.bytes("new", 2 * MIB));
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("keep.img"), StoreFiles.bytes("keep", MIB)),
                    Reference.parse("keep:1"), n -> { });
            store.importFile(Files.write(dir.resolve("gone.img"), StoreFiles.bytes("gone", MIB)),
                    Reference.parse("gone:1"), n -> { });
        }
        List<String> operation = switch (point) {
            case INDEX_REPLACED -> List.of("untag", "gone:1");
            case SWEEPING -> {
                for (int i = 0; i < 3; i++) {
                    byte[] orphan = StoreFiles.bytes("orphan " + i, 1000);
                    Files.write(StoreFiles.blob(root, StoreFiles.sha256(orphan)), orphan);
                }
                yield List.of("gc");
            }
            default -> List.of("import", incoming.toString(), "new:1");
        };
        List<String> args = new ArrayList<>(List.of("crash", root.toString(), point.name()));
        args.addAll(operation);

        CrashingImporter.Result child = CrashingImporter.run(args.toArray(String[]::new));

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), () -> "the child should halt at " + point + ":\n" + child.output());
        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertTrue(after.has("keep:1"), "an untouched image survives any crash");
        assertEquals(point != CrashPoint.INDEX_REPLACED, after.has("gone:1"), "the untag is durable once index.json is replaced");
        assertFalse(after.has("new:1"), "an import is visible only after its index.json is in place");
        assertTrue(after.collected() > 0, "a crash at " + point + " leaves something for gc (it was not a no-op)");
    }

    @Test
    void anImportHaltedRightAfterItsIndexIsReplacedIsComplete() throws Exception {
        Path root = dir.resolve("store");
        Path incoming = Files.write(dir.resolve("new.img"), StoreFiles.bytes("new", 2 * MIB));
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("old.img"), StoreFiles.bytes("old", MIB)),
                    Reference.parse("new:1"), n -> { });
        }

        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), "INDEX_REPLACED",
                "import", incoming.toString(), "new:1");

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), child.output());
        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertEquals(StoreFiles.sha256(incoming), after.names().get(ImageName.parse("new:1")).hex(),
                "the name moved to the new content");
        assertTrue(after.collected() > 0, "the old image's blobs were left for gc");
    }

    @Test
    void anImportSurvivesSigkillAtAnyMoment() throws Exception {
        Path big = dir.resolve("big.img");
        writeBigFile(big, 256);
        String digest = StoreFiles.sha256(big);
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("keep.img"), StoreFiles.bytes("keep", MIB)),
                    Reference.parse("keep:1"), n -> { });
        }

        long roundMillis = timeOneRound(root, big);
        for (int i = 0; i < 10; i++) {
            long delay = roundMillis * (2 * i + 1) / 20;
            Process child = CrashingImporter.command(false, "loop", root.toString(), big.toString()).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("ready", out.readLine());
            assertFalse(child.waitFor(delay, TimeUnit.MILLISECONDS), "the loop never ends on its own");
            child.destroyForcibly();
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            out.close();

            StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
            System.out.printf("kill %d after %d of %d ms: names %s, gc removed %d files%n",
                    i, delay, roundMillis, after.names().keySet(), after.collected());
            assertTrue(after.has("keep:1"));
            if (after.has("big:latest")) {
                assertEquals(digest, after.names().get(ImageName.parse("big:latest")).hex());
            }
        }
    }

    /** Runs one import-and-untag in a fresh JVM and returns how long it took after the store opened. */
    private static long timeOneRound(Path root, Path big) throws IOException, InterruptedException {
        Process child = CrashingImporter.command(false, "once", root.toString(), big.toString()).start();
        List<String> lines = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        assertEquals(0, child.waitFor(), String.join("\n", lines));
        String done = lines.get(lines.size() - 1);
        assertTrue(done.startsWith("done "), String.join("\n", lines));
        return Math.max(50, Long.parseLong(done.substring("done ".length())));
    }

    /** A file of {@code mib} MiB whose every MiB differs, so nothing is skipped as a hole or deduplicated. */
    private static void writeBigFile(Path file, int mib) throws IOException {
        ByteBuffer chunk = ByteBuffer.wrap(StoreFiles.bytes("big", MIB));
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (int i = 0; i < mib; i++) {
                chunk.putInt(64, i).rewind();
                while (chunk.hasRemaining()) {
                    ch.write(chunk);
                }
                chunk.rewind();
            }
        }
    }
}
