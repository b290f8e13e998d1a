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

    /**
     * What each commit crash point interrupts (HoldsCrashTest, LastUseCrashTest, SealCrashTest and RangedPullCrashTest
     * have the others; IndexWriterTest the background writer's INDEX_PREPARED): an import (up to the journal frame, and the index rewrite
     * after it), an untag (from a written frame through the rewrite and compaction), a gc, or the
     * replay at open of a journal a crash left with a torn tail.
     */
    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, mode = EnumSource.Mode.MATCH_NONE, names = {"HOLDS_.*", "LAST_USE_.*", "SEALING.*", "RANGE_.*", "LAZY_.*", "INDEX_PREPARED"})
    void aCrashAtAnyStepLeavesAConsistentStore(CrashPoint point) throws Exception {
        Path root = dir.resolve("store");
        Path incoming = Files.write(dir.resolve("new.img"), StoreFiles.bytes("new", 2 * MIB));
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("keep.img"), StoreFiles.bytes("keep", MIB)),
                    Reference.parse("keep:1"), n -> { });
            store.importFile(Files.write(dir.resolve("gone.img"), StoreFiles.bytes("gone", MIB)),
                    Reference.parse("gone:1"), n -> { });
        }
        boolean untag = switch (point) {
            case JOURNAL_WRITTEN, JOURNAL_SYNCED, INDEX_REPLACED, CACHE_STAGED, JOURNAL_COMPACTED -> true;
            default -> false;
        };
        List<String> operation = untag ? List.of("untag", "gone:1") : List.of("import", incoming.toString(), "new:1");
        if (point == CrashPoint.SWEEPING) {
            for (int i = 0; i < 3; i++) {
                byte[] orphan = StoreFiles.bytes("orphan " + i, 1000);
                Files.write(StoreFiles.blob(root, StoreFiles.sha256(orphan)), orphan);
            }
            operation = List.of("gc");
        }
        if (point == CrashPoint.JOURNAL_REPLAYED) {
            leaveJournalWithTornTail(root);
        }
        List<String> args = new ArrayList<>(List.of("crash", root.toString(), point.name()));
        args.addAll(operation);

        CrashingImporter.Result child = CrashingImporter.run(args.toArray(String[]::new));

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), () -> "the child should halt at " + point + ":\n" + child.output());
        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertTrue(after.has("keep:1"), "an untouched image survives any crash");
        boolean untagged = untag || point == CrashPoint.JOURNAL_REPLAYED;
        assertEquals(!untagged, after.has("gone:1"), "the untag is durable once its journal frame is written");
        assertEquals(point == CrashPoint.INDEX_STAGED, after.has("new:1"),
                "an import is there exactly when its journal frame was written whole");
        assertTrue(after.collected() > 0, "a crash at " + point + " leaves something for gc (it was not a no-op)");
        for (String name : after.names().keySet().stream().map(ImageName::toString).toList()) {
            StoreFiles.assertSkopeoReads(root, name);
        }
    }

    /**
     * A commit fsyncs the new image's layer, blobs/ and its journal frame, not its config and
     * manifest. A power cut right after the commit can leave those two empty under their names;
     * the next open rebuilds them from the journal's record, so the acknowledged name works in
     * vimgfs, in fsck and in skopeo.
     */
    @Test
    void aPowerCutThatLosesAFreshImagesManifestAndConfigLosesNothing() throws Exception {
        Path root = dir.resolve("store");
        Path incoming = Files.write(dir.resolve("new.img"), StoreFiles.bytes("new", MIB));
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("keep.img"), StoreFiles.bytes("keep", MIB)),
                    Reference.parse("keep:1"), n -> { });
        }
        java.util.Set<String> before = StoreFiles.blobNames(root);

        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), "JOURNAL_SYNCED",
                "import", incoming.toString(), "new:1");
        assertEquals(CrashingImporter.HALT_STATUS, child.status(), child.output());

        java.util.Set<String> metadata = new java.util.TreeSet<>(StoreFiles.blobNames(root));
        metadata.removeAll(before);
        metadata.remove(StoreFiles.sha256(incoming));
        assertEquals(2, metadata.size(), "the commit wrote a config and a manifest: " + metadata);
        for (String hex : metadata) { // what the page cache held and the disk never got
            Path blob = StoreFiles.blob(root, hex);
            StoreFiles.unprotect(blob);
            Files.write(blob, new byte[0]);
        }

        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertTrue(after.has("new:1"), "the name was acknowledged: its journal frame was fsynced");
        for (String hex : metadata) {
            assertEquals(hex, StoreFiles.sha256(StoreFiles.blob(root, hex)), "rebuilt from the journal");
        }
        StoreFiles.assertSkopeoReads(root, "new:1");
    }

    /** A store whose journal has an untag of gone:1 not yet in index.json, and a torn frame after it. */
    private static void leaveJournalWithTornTail(Path root) throws Exception {
        CrashingImporter.Result first = CrashingImporter.run("crash", root.toString(), "JOURNAL_SYNCED", "untag", "gone:1");
        assertEquals(CrashingImporter.HALT_STATUS, first.status(), first.output());
        byte[] frame = Journal.encodeFrame(Long.MAX_VALUE / 2, List.of(new Change.RemoveName(ImageName.parse("keep:1"))));
        Files.write(root.resolve(".vimgfs/journal"), java.util.Arrays.copyOf(frame, frame.length / 2),
                StandardOpenOption.APPEND);
    }

    /**
     * SIGKILL while a process tags names as fast as it can: every name it reported acknowledged
     * is there afterwards, whichever step (append, fsync, index rewrite, compaction) the kill hit.
     */
    @Test
    void everyAcknowledgedNameSurvivesSigkillDuringTagChurn() throws Exception {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("base.img"), StoreFiles.bytes("base", 64 * 1024)),
                    Reference.parse("base:1"), n -> { });
        }
        for (int round = 0; round < 4; round++) {
            Process child = CrashingImporter.command(true, "tags", root.toString(), "r" + round).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("ready", out.readLine());
            List<String> acknowledged = new ArrayList<>();
            int wanted = 50 + round * 150;
            for (String line = out.readLine(); line != null && acknowledged.size() < wanted; line = out.readLine()) {
                acknowledged.add(line.substring("tagged ".length()));
            }
            child.destroyForcibly();
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            out.close();

            StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
            for (String name : acknowledged) {
                assertTrue(after.has(name), name + " was acknowledged before the kill, and lost");
            }
            StoreFiles.assertSkopeoReads(root, acknowledged.get(acknowledged.size() - 1));
        }
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
