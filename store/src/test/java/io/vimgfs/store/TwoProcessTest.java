package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SPEC §7: several processes on one store (a mount and the CLI): no lost update, changes seen. */
class TwoProcessTest {
    private static final int CHILD_IMAGES = 12;
    private static final int OUR_IMAGES = 12;

    @TempDir
    Path dir;

    @Test
    void concurrentImportsFromTwoProcessesLoseNothing() throws Exception {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            Process child = CrashingImporter.command(true, "many", root.toString(), "child", Integer.toString(CHILD_IMAGES)).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("ready", out.readLine());
            for (int i = 0; i < OUR_IMAGES; i++) {
                store.importStream(new ByteArrayInputStream(CrashingImporter.content("parent", i)),
                        Reference.parse("parent/img:" + i), n -> { });
            }
            assertTrue(child.waitFor(60, TimeUnit.SECONDS));
            String rest = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(0, child.exitValue(), rest);

            store.refresh();
            for (String prefix : new String[] {"child", "parent"}) {
                for (int i = 0; i < (prefix.equals("child") ? CHILD_IMAGES : OUR_IMAGES); i++) {
                    ImageInfo info = store.resolve(prefix + "/img:" + i);
                    assertEquals(StoreFiles.sha256(CrashingImporter.content(prefix, i)), info.digest().hex());
                }
            }
            assertEquals(CHILD_IMAGES + OUR_IMAGES, store.names().size());
            assertTrue(store.fsck(false, n -> { }).clean());
        }
        StoreFiles.Outcome reopened = StoreFiles.assertConsistent(root);
        assertEquals(CHILD_IMAGES + OUR_IMAGES, reopened.names().size(), "index.json on disk has every name");
    }

    @Test
    void aStoreSeesAnotherProcesssImportAfterRefresh() throws Exception {
        Path root = dir.resolve("store");
        Path file = Files.write(dir.resolve("other.img"), StoreFiles.bytes("other", 100_000));
        try (ImageStore store = ImageStore.open(root)) {
            store.importStream(new ByteArrayInputStream(StoreFiles.bytes("mine", 5000)), Reference.parse("mine:1"), n -> { });
            long generation = store.generation();
            assertFalse(store.refresh(), "nothing changed yet");

            CrashingImporter.Result child = CrashingImporter.run("import", root.toString(), file.toString(), "other:1");
            assertEquals(0, child.status(), child.output());

            assertTrue(store.refresh(), "the other process's commit is noticed");
            assertTrue(store.generation() > generation);
            assertEquals(StoreFiles.sha256(file), store.resolve("other:1").digest().hex());
            assertEquals(Set.of(ImageName.parse("mine:1"), ImageName.parse("other:1")), store.names().keySet());
            long seen = store.generation();
            assertFalse(store.refresh());
            assertEquals(seen, store.generation());
        }
    }

    /**
     * A mount process that runs gc while an upload is open must not lose the upload's claim on
     * its staging file, or a later {@code vimgfs gc} in another process deletes it under the writer.
     */
    @Test
    void anOpenUploadSurvivesGcHereAndThenInAnotherProcess() throws Exception {
        Path root = dir.resolve("store");
        byte[] content = StoreFiles.bytes("in flight", 200_000);
        try (ImageStore store = ImageStore.open(root)) {
            Upload upload = store.beginUpload();
            upload.write(ByteBuffer.wrap(content, 0, 100_000), 0);
            assertEquals(0, store.collectGarbage(false).removals().size());
            Set<Path> staged = new HashSet<>(StoreFiles.stagingFiles(root));
            assertEquals(1, staged.size());

            CrashingImporter.Result gc = CrashingImporter.run("gc", root.toString());

            assertEquals(0, gc.status(), gc.output());
            assertFalse(gc.output().contains("removed"), "the other process's gc removed the live upload:\n" + gc.output());
            assertEquals(staged, Set.copyOf(StoreFiles.stagingFiles(root)));
            upload.write(ByteBuffer.wrap(content, 100_000, 100_000), 100_000);
            ImageInfo info = store.place(upload, Reference.parse("flight:1"));
            assertEquals(StoreFiles.sha256(content), info.digest().hex());
        }
    }
}
