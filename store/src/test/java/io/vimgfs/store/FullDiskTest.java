package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.blobNames;
import static io.vimgfs.store.StoreFiles.bytes;
import static io.vimgfs.store.StoreFiles.names;
import static io.vimgfs.store.StoreFiles.stagingFiles;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A placement that fails after its layer is in blobs/ — the disk fills while the manifest, the
 * config or index.json is written — takes its blobs with it in the same operation (issue 8):
 * nothing names them, and an operator out of space should not need a gc to get it back.
 */
class FullDiskTest {
    @TempDir
    Path dir;
    private Path root;
    private ImageStore store;
    /** The step at which the next write "fails with ENOSPC", and how many more such steps to pass first. */
    private final AtomicReference<CrashPoint> failAt = new AtomicReference<>();
    private final AtomicInteger skip = new AtomicInteger();

    @BeforeEach
    void openStore() throws IOException {
        root = dir.resolve("store");
        store = ImageStore.open(root, StoreOptions.defaults().withCrashHook(point -> {
            if (point == failAt.get() && skip.getAndDecrement() == 0) {
                failAt.set(null);
                throw new UncheckedIOException(new IOException("No space left on device"));
            }
        }));
        importAs(write("a.raw", bytes("a", 1 << 20)), "a:1");
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, names = {"LAYER_PLACED", "MANIFEST_WRITTEN", "JOURNAL_TORN", "JOURNAL_WRITTEN"})
    void aPlacementThatRunsOutOfSpaceLeavesNoBlob(CrashPoint point) throws IOException {
        Set<String> before = blobNames(root);
        Path b = write("b.raw", bytes("b", 2 << 20));
        failAt.set(point);

        Exception e = assertThrows(Exception.class, () -> importAs(b, "b:1"));
        assertTrue(String.valueOf(e.getMessage()).contains("No space left on device"), String.valueOf(e));
        assertEquals(before, blobNames(root), "the refused image's layer, config and manifest are gone");
        assertEquals(List.of(), stagingFiles(root));
        assertEquals(Set.of("a:1"), names(store));

        ImageInfo placed = importAs(b, "b:1");
        assertEquals(placed, store.resolve("b:1"), "with space again, the same import succeeds");
        assertTrue(store.fsck(false, n -> { }).clean());
    }

    @Test
    void aBatchThatRunsOutOfSpaceLeavesNoBlobOfAnyOfItsImages() throws IOException {
        Set<String> before = blobNames(root);
        List<ImageStore.ImportItem> items = List.of(
                new ImageStore.ImportItem(write("c.raw", bytes("c", 1 << 20)), Reference.parse("c:1")),
                new ImageStore.ImportItem(write("d.raw", bytes("d", 1 << 20)), Reference.parse("d:1")));
        skip.set(1);
        failAt.set(CrashPoint.MANIFEST_WRITTEN); // the second image's metadata

        assertThrows(Exception.class, () -> store.importAll(items, n -> { }));
        assertEquals(before, blobNames(root), "the first image of the batch, admitted but never committed, went too");
        assertEquals(Set.of("a:1"), names(store));
    }

    @Test
    void aFailedCommitNeverDeletesBlobsThatWereThereBefore() throws IOException {
        Set<String> before = blobNames(root);
        failAt.set(CrashPoint.JOURNAL_WRITTEN);

        assertThrows(Exception.class, () -> importAs(write("again.raw", bytes("a", 1 << 20)), "a:2"));
        assertEquals(before, blobNames(root));
        assertTrue(store.fsck(false, n -> { }).clean(), "a:1 keeps every blob it needs");
    }

    @Test
    void anIndexRewriteThatRunsOutOfSpaceLosesNoName() throws IOException {
        store.syncIndex();
        failAt.set(CrashPoint.INDEX_STAGED);

        ImageInfo b = importAs(write("b.raw", bytes("b", 1 << 20)), "b:1");
        try {
            store.syncIndex(); // unless the background writer ran into the full disk first
        } catch (IOException | UncheckedIOException e) {
            assertTrue(String.valueOf(e.getMessage()).contains("No space left on device"), String.valueOf(e));
        }
        assertEquals(null, failAt.get(), "the rewrite ran out of space once");
        assertEquals(b, store.resolve("b:1"), "the journal has the name");
        store.close();
        store = ImageStore.open(root);
        assertEquals(Set.of("a:1", "b:1"), names(store), "and it survives a reopen");
        store.syncIndex();
        assertEquals(b.digest().hex(), StoreFiles.blobsOfImage(root, "b:1").get(2), "index.json caught up");
        assertTrue(store.fsck(false, n -> { }).clean());
    }

    private ImageInfo importAs(Path file, String reference) throws IOException {
        return store.importFile(file, Reference.parse(reference), n -> { });
    }

    private Path write(String name, byte[] content) throws IOException {
        return Files.write(dir.resolve(name), content);
    }
}
