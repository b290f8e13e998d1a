package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Placing a pulled image with its chunk index adds one on-disk step to the commit: the index blob,
 * fsynced with the config and manifest before the journal frame names them. A process halted at
 * any step of that commit, or killed with SIGKILL while stopped there, leaves a store that opens,
 * is fsck-clean, and has the image with its index exactly when the frame was written, and
 * otherwise nothing of it that one gc does not remove.
 */
class ChunkIndexCrashTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, names = {"STAGED", "STAGED_SYNCED", "LAYER_PLACED", "MANIFEST_WRITTEN",
        "JOURNAL_TORN", "JOURNAL_WRITTEN", "JOURNAL_SYNCED", "INDEX_STAGED", "INDEX_REPLACED"})
    void aPlacementHaltedAtAnyStepKeepsTheImageWithItsIndexExactlyWhenItsFrameIsWritten(CrashPoint point) throws Exception {
        Path source = sourceStore();
        Path root = dir.resolve("store");

        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), point.name(), "place",
                source.toString(), "vm:1");

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), () -> "the child should halt at " + point + ":\n" + child.output());
        assertPlacedExactly(source, root, point.compareTo(CrashPoint.JOURNAL_WRITTEN) >= 0);
    }

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, names = {"MANIFEST_WRITTEN", "JOURNAL_SYNCED"})
    void aPlacementKilledWithSigkillKeepsTheImageWithItsIndexExactlyWhenItsFrameIsWritten(CrashPoint point) throws Exception {
        Path source = sourceStore();
        Path root = dir.resolve("store");
        Process child = CrashingImporter.command(true, "pause", root.toString(), point.name(), "place",
                source.toString(), "vm:1").start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            assertEquals("ready", out.readLine());
            assertEquals("paused at " + point, out.readLine());
            child.destroyForcibly(); // SIGKILL
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
        }
        assertPlacedExactly(source, root, point == CrashPoint.JOURNAL_SYNCED);
    }

    private Path sourceStore() throws Exception {
        Path source = dir.resolve("source");
        try (ImageStore store = ImageStore.open(source)) {
            store.importFile(Files.write(dir.resolve("vm.img"), StoreFiles.bytes("vm", 3 * MIB + 100)),
                    Reference.parse("vm:1"), n -> { });
        }
        return source;
    }

    private static void assertPlacedExactly(Path source, Path root, boolean placed) throws Exception {
        StoreFiles.Outcome after = StoreFiles.assertConsistent(root); // opens, fsck clean, one gc leaves only live blobs
        assertEquals(placed, after.has("vm:1"), "the image is there exactly when its journal frame was written");
        if (placed) {
            byte[] expected;
            try (ImageStore from = ImageStore.open(source); java.nio.channels.FileChannel layer =
                    from.openImage(from.resolve("vm:1").digest())) {
                expected = ChunkIndex.compute(layer, layer.size(), n -> { }).bytes();
            }
            try (ImageStore store = ImageStore.open(root)) {
                assertArrayEquals(expected, store.artifact(store.resolve("vm:1").digest()).chunks().orElseThrow(),
                        "the acknowledged image keeps its chunk index");
            }
            StoreFiles.assertSkopeoReads(root, "vm:1");
        }
    }
}
