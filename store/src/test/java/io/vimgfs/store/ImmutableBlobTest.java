package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static io.vimgfs.store.StoreFiles.blob;
import static io.vimgfs.store.StoreFiles.bytes;
import static io.vimgfs.store.StoreFiles.run;
import static io.vimgfs.store.StoreFiles.sha256;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A placed blob never changes, root included (the tests run as root): it is immutable, 0444, and
 * carries its image's {@code user.vimgfs.*} xattrs; only the store's own deletions clear the flag.
 */
class ImmutableBlobTest {
    @TempDir
    Path dir;
    private Path root;
    private ImageStore store;

    @BeforeEach
    void openStore() throws IOException {
        root = dir.resolve("store");
        store = ImageStore.open(root);
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @Test
    void theTestDirectorySupportsTheImmutableFlag() throws IOException {
        Path probe = Files.writeString(dir.resolve("probe"), "x");
        StoreFiles.Run chattr = run("chattr", "+i", probe.toString());
        assertEquals(0, chattr.status(), "chattr +i in @TempDir: " + chattr.output());
        StoreFiles.unprotect(probe);
    }

    @Test
    void rootCannotWriteAppendTruncateRenameOrDeleteAPlacedBlob() throws Exception {
        ImageInfo image = importAs("a.img", bytes("a", MIB), "a:1");
        store.syncIndex();
        for (String hex : StoreFiles.blobsOfImage(root, "a:1")) { // manifest, config, layer
            Path blob = blob(root, hex);
            assertTrue(lsattr(blob).contains("i"), hex + " is immutable: " + lsattr(blob));

            assertThrows(IOException.class, () -> Files.write(blob, new byte[] {1}, StandardOpenOption.APPEND));
            assertThrows(IOException.class, () -> FileChannel.open(blob, StandardOpenOption.WRITE).close());
            assertThrows(IOException.class, () -> Files.write(blob, new byte[] {1})); // truncates first
            assertThrows(IOException.class, () -> Files.move(blob, dir.resolve("moved")));
            assertThrows(IOException.class, () -> Files.delete(blob));
            assertThrows(IOException.class, () -> Files.setPosixFilePermissions(blob, PosixFilePermissions.fromString("rw-rw-rw-")));
            StoreFiles.Run append = run("sh", "-c", "echo x >> '" + blob + "'");
            assertNotEquals(0, append.status(), "echo x >> blob: " + append.output());

            assertEquals(hex, sha256(blob), "the bytes are unchanged");
            assertEquals("r--r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(blob)));
        }
        assertEquals(image.digest().hex(), sha256(blob(root, image.digest().hex())));
        assertTrue(store.fsck(false, n -> { }).clean());
    }

    @Test
    void untagOfTheLastNameAndGcStillDeleteImmutableBlobs() throws Exception {
        importAs("a.img", bytes("a", MIB), "a:1");
        store.syncIndex();
        List<String> blobs = StoreFiles.blobsOfImage(root, "a:1");
        store.untag(ImageName.parse("a:1"));
        store.syncIndex(); // the blobs go once index.json no longer names them
        for (String hex : blobs) {
            assertFalse(Files.exists(blob(root, hex)), hex + " went with its image's last name");
        }

        importAs("b.img", bytes("b", MIB), "b:1");
        store.syncIndex();
        List<String> orphaned = StoreFiles.blobsOfImage(root, "b:1");
        forgetAllNames();
        assertEquals(3, store.collectGarbage(false).removals().size());
        for (String hex : orphaned) {
            assertFalse(Files.exists(blob(root, hex)), hex + " was collected");
        }
    }

    @Test
    void layerBlobsCarryTheImagesXattrs() throws Exception {
        Path base = dir.resolve("base.qcow2");
        QemuImg.img("create", "-q", "-f", "qcow2", base, "64M");
        ImageInfo b = store.importFile(base, Reference.parse("base:1"), n -> { });
        Path overlay = dir.resolve("vm.qcow2");
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", b.digest().hex(), "-F", "qcow2", "-u", overlay, "128M");
        ImageInfo vm = store.importFile(overlay, Reference.parse("vm:1"), n -> { });

        Path layer = blob(root, vm.digest().hex());
        assertEquals(vm.digest().toString(), getfattr("user.vimgfs.digest", layer));
        assertEquals("qcow2", getfattr("user.vimgfs.format", layer));
        assertEquals(Long.toString(128L * MIB), getfattr("user.vimgfs.virtual_size", layer));
        assertEquals(b.digest().toString(), getfattr("user.vimgfs.backing", layer));
        assertFalse(run("getfattr", "--absolute-names", "-d", blob(root, b.digest().hex()).toString()).output().contains("backing"),
                "a base has no backing attribute");
        assertTrue(lsattr(layer).contains("i"));
    }

    @Test
    void placingContentWhoseBlobIsAlreadyThereWorks() throws Exception {
        byte[] content = bytes("same", MIB);
        ImageInfo first = importAs("one.img", content, "one:1");
        Path blob = blob(root, first.digest().hex());
        forgetAllNames(); // the blobs stay, sealed, as when gc kept them for a process that has them open
        assertTrue(lsattr(blob).contains("i"), "the orphan is sealed");

        ImageInfo again = importAs("two.img", content, "two:1");

        assertEquals(first.digest(), again.digest());
        assertEquals(first.digest().hex(), sha256(blob));
        assertEquals("raw", getfattr("user.vimgfs.format", blob));
        assertTrue(StoreFiles.stagingFiles(root).isEmpty(), "the staged copy was dropped");
        assertTrue(store.fsck(false, n -> { }).clean());
    }

    @Test
    void fsckReportsABlobWithoutTheFlagAndRepairSetsIt() throws Exception {
        ImageInfo image = importAs("a.img", bytes("a", MIB), "a:1");
        Path layer = blob(root, image.digest().hex());
        StoreFiles.unprotect(layer);

        FsckReport report = store.fsck(false, n -> { });
        assertEquals(List.of(new FsckReport.Problem(image.digest().toString(),
                "not immutable: root could change its bytes (fsck --repair sets the flag)")), report.problems());

        FsckReport repaired = store.fsck(true, n -> { });
        assertEquals(List.of("made blob " + image.digest() + " immutable"), repaired.repairs());
        assertTrue(lsattr(layer).contains("i"));
        assertTrue(store.fsck(false, n -> { }).clean());
        assertEquals(List.of("a:1"), store.list().get(0).names().stream().map(ImageName::toString).toList());
    }

    @Test
    void sealBlobsBringsAStoreWrittenBeforeImmutabilityUpToDate() throws Exception {
        ImageInfo image = importAs("a.img", bytes("a", MIB), "a:1");
        store.syncIndex();
        List<String> blobs = StoreFiles.blobsOfImage(root, "a:1");
        for (String hex : blobs) { // what a store written by an older vimgfs looks like
            Path blob = blob(root, hex);
            StoreFiles.unprotect(blob);
            run("setfattr", "-x", "user.vimgfs.digest", blob.toString());
            Files.setPosixFilePermissions(blob, PosixFilePermissions.fromString("rw-r--r--"));
        }
        Path layer = blob(root, image.digest().hex());
        assertFalse(lsattr(layer).contains("i"));

        assertEquals(3, store.sealBlobs());

        for (String hex : blobs) {
            assertTrue(lsattr(blob(root, hex)).contains("i"), hex);
            assertEquals("r--r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(blob(root, hex))));
        }
        assertEquals(image.digest().toString(), getfattr("user.vimgfs.digest", layer));
        assertEquals(0, store.sealBlobs(), "a second mount touches nothing");
        assertTrue(store.fsck(false, n -> { }).clean());
    }

    @Test
    void sealBlobsOnTenThousandSealedBlobsTouchesNoneAndIsQuick() throws Exception {
        Path blobs = root.resolve("blobs/sha256");
        for (int i = 0; i < 10_000; i++) {
            byte[] content = ("blob " + i).getBytes(StandardCharsets.UTF_8);
            Files.write(blobs.resolve(sha256(content)), content);
        }
        assertEquals(10_000, store.sealBlobs());

        long start = System.nanoTime();
        int changed = store.sealBlobs();
        long millis = (System.nanoTime() - start) / 1_000_000;

        assertEquals(0, changed);
        System.out.println("sealBlobs over 10,000 sealed blobs: " + millis + " ms");
        assertTrue(millis < 5_000, "a mount of 10,000 sealed blobs waits " + millis + " ms");
        ImmutableFlag flag = new ImmutableFlag(root);
        try (Stream<Path> all = Files.list(blobs)) {
            for (Path blob : all.toList()) {
                assertEquals(ImmutableFlag.State.SET, flag.get(blob), blob::toString);
            }
        }
    }

    /** Empties index.json behind the store's back, leaving every blob unreferenced. */
    @Test
    void theMountTimeSealingPassIsSkippedWhileOnlyVimgfsChangedBlobsButNotAfterAnotherToolAddedOne() throws Exception {
        importAs("a.img", bytes("a", MIB), "a:1");
        store.sealBlobs();
        importAs("b.img", bytes("b", MIB), "b:1");
        store.untag(ImageName.parse("a:1"));
        store.syncIndex();
        Path layer = blob(root, store.resolve("b:1").digest().hex());
        StoreFiles.unprotect(layer); // behind vimgfs's back, without touching blobs/ itself
        assertEquals(0, store.sealBlobs(), "vimgfs's own placements and deletions kept the stamp: no pass");
        assertFalse(lsattr(layer).contains("i"), "(which is why fsck still checks every blob)");

        byte[] foreign = bytes("from skopeo", 1000); // another tool writes a blob into the layout
        Files.write(blob(root, sha256(foreign)), foreign);
        assertEquals(2, store.sealBlobs(), "blobs/ changed outside vimgfs: the full pass ran");
        assertTrue(lsattr(layer).contains("i"));
        assertTrue(lsattr(blob(root, sha256(foreign))).contains("i"));
    }

    private void forgetAllNames() throws IOException {
        Files.writeString(root.resolve("index.json"), "{\"schemaVersion\":2,\"manifests\":[]}");
        store.refresh();
    }

    private ImageInfo importAs(String file, byte[] content, String name) throws IOException {
        return store.importFile(Files.write(dir.resolve(file), content), Reference.parse(name), n -> { });
    }

    /** The flags column of {@code lsattr}, e.g. {@code ----i---------e-------}. */
    static String lsattr(Path file) {
        try {
            StoreFiles.Run lsattr = run("lsattr", "-d", file.toString());
            assertEquals(0, lsattr.status(), lsattr.output());
            return lsattr.output().split(" ")[0];
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static String getfattr(String name, Path file) throws IOException {
        StoreFiles.Run getfattr = run("getfattr", "--absolute-names", "--only-values", "-n", name, file.toString());
        assertEquals(0, getfattr.status(), getfattr.output());
        return getfattr.output();
    }
}
