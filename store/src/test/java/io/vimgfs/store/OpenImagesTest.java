package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static io.vimgfs.store.StoreFiles.blob;
import static io.vimgfs.store.StoreFiles.bytes;
import static io.vimgfs.store.StoreFiles.sha256;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image some process has open is in use, whoever opened it and however: the store finds it
 * in {@code /proc} and neither untagging its last name nor gc deletes its blob until it is closed.
 */
class OpenImagesTest {
    @TempDir
    Path dir;
    private Path root;
    private ImageStore store;
    private Process holder;

    @BeforeEach
    void openStore() throws IOException {
        root = dir.resolve("store");
        store = ImageStore.open(root);
    }

    @AfterEach
    void stopHolderAndCloseStore() throws Exception {
        if (holder != null) {
            stopHolder();
        }
        store.close();
    }

    @Test
    void aProcessHoldingABlobOnADescriptorIsFound() throws Exception {
        ImageInfo image = importAs("a.img", bytes("a", MIB), "a:1");
        importAs("b.img", bytes("b", MIB), "b:1");
        assertEquals(Map.of(), store.openImages());

        List<ImageHolder> holders = holdOpen(image.digest());

        assertEquals(List.of(image.digest()), List.copyOf(store.openImages().keySet()));
        assertTrue(holders.stream().anyMatch(h -> h.command().contains("sleep 30")), holders::toString);
        assertTrue(holders.stream().anyMatch(h -> h.pid() == holder.pid()
                || holder.descendants().anyMatch(d -> d.pid() == h.pid())), holders::toString);
    }

    @Test
    void aManifestOrConfigOpenForItsFsyncIsNotAnImageInUse() throws Exception {
        ImageInfo image = importAs("a.img", bytes("a", MIB), "a:1");
        String metadata = StoreFiles.blobNames(root).stream().filter(hex -> !hex.equals(image.digest().hex()))
                .findFirst().orElseThrow();
        try (FileChannel fsyncing = FileChannel.open(blob(root, metadata))) { // as the index writer's fsync has it
            assertEquals(Map.of(), store.openImages());

            holdOpen(image.digest());
            assertEquals(Set.of(image.digest()), store.openImages().keySet());
        }
    }

    @Test
    void anOpenImageOutlivesItsLastNameAndGcUntilClosed() throws Exception {
        ImageInfo image = importAs("a.img", bytes("a", MIB), "a:1");
        Path layer = blob(root, image.digest().hex());
        List<ImageHolder> holders = holdOpen(image.digest());

        store.untag(ImageName.parse("a:1"));
        assertEquals(List.of(image.digest()), store.list().stream().map(ImageInfo::digest).toList(),
                "open, the image stays in the catalog without names (by-digest/ and ls --all show it)");
        assertTrue(Files.exists(layer), "and its blob stays while open");

        GcReport dry = store.collectGarbage(true);
        assertFalse(dry.removals().stream().anyMatch(r -> r.file().equals(layer)));
        String reason = store.keepReasons().get(image.digest()).stream().map(KeepReason::describe)
                .filter(r -> r.contains("sleep 30")).findFirst().orElseThrow();
        assertTrue(reason.startsWith("in use by pid "), reason);
        assertTrue(holders.stream().anyMatch(h -> reason.contains("pid " + h.pid() + " (")), reason);
        store.collectGarbage(false);
        assertEquals(image.digest().hex(), sha256(layer), "gc kept it, whole");

        stopHolder();
        awaitClosed(image.digest());
        GcReport gc = store.collectGarbage(false);

        assertTrue(gc.kept().isEmpty(), gc.kept()::toString);
        assertTrue(gc.removals().stream().anyMatch(r -> r.file().equals(layer)), gc.removals()::toString);
        assertFalse(Files.exists(layer), "closed, it goes at the next gc");
        assertEquals(StoreFiles.liveBlobs(root), StoreFiles.blobNames(root));
    }

    @Test
    void contentKeptForAnOpenerCanBePlacedAgain() throws Exception {
        byte[] content = bytes("again", MIB);
        ImageInfo first = importAs("a.img", content, "a:1");
        holdOpen(first.digest());
        store.untag(ImageName.parse("a:1"));

        ImageInfo again = importAs("b.img", content, "b:1");

        assertEquals(first.digest(), again.digest());
        assertEquals(List.of("b:1"), store.list().get(0).names().stream().map(ImageName::toString).toList());
        assertTrue(store.fsck(false, n -> { }).clean());
    }

    @Test
    void collectIfUnusedDeletesAKeptBlobOnlyOnceNoOneHasItOpen() throws Exception {
        ImageInfo image = importAs("a.img", bytes("a", MIB), "a:1");
        Path layer = blob(root, image.digest().hex());
        holdOpen(image.digest());
        try (java.nio.channels.FileChannel ours = store.openImage(image.digest())) { // as a data=fuse mount does
            store.untag(ImageName.parse("a:1"));
            ours.close();
            assertFalse(store.collectIfUnused(image.digest()), "the child still has it");
        }
        stopHolder();
        awaitClosed(image.digest());

        assertTrue(store.collectIfUnused(image.digest()));
        assertFalse(Files.exists(layer));
        assertFalse(store.collectIfUnused(image.digest()), "already gone");
    }

    /** Starts a shell that keeps the blob on descriptor 3 while it sleeps; returns the holders /proc shows. */
    private List<ImageHolder> holdOpen(Digest digest) throws Exception {
        Path blob = blob(root, digest.hex());
        holder = new ProcessBuilder("sh", "-c", "exec 3<'" + blob + "'; sleep 30").start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            List<ImageHolder> holders = store.openImages().getOrDefault(digest, List.of());
            if (holders.stream().anyMatch(h -> h.command().contains("sleep"))) {
                return holders;
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the child never showed with " + digest + " open");
    }

    /** Kills the shell and its sleep (dash forks it; it inherits descriptor 3). */
    private void stopHolder() throws InterruptedException {
        holder.descendants().forEach(ProcessHandle::destroyForcibly);
        holder.destroyForcibly();
        assertTrue(holder.waitFor(10, TimeUnit.SECONDS));
    }

    private void awaitClosed(Digest digest) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (store.openImages().containsKey(digest)) {
            assertTrue(System.nanoTime() < deadline, "still open after the holder ended");
            Thread.sleep(20);
        }
    }

    private ImageInfo importAs(String file, byte[] content, String name) throws IOException {
        return store.importFile(Files.write(dir.resolve(file), content), Reference.parse(name), n -> { });
    }
}
