package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static io.vimgfs.store.StoreFiles.blob;
import static io.vimgfs.store.StoreFiles.blobNames;
import static io.vimgfs.store.StoreFiles.bytes;
import static io.vimgfs.store.StoreFiles.sha256;
import static io.vimgfs.store.StoreFiles.stagingFiles;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The store against real files: what an operator sees in the directory and through the API. */
class ImageStoreTest {
    private static final ObjectMapper JSON = new ObjectMapper();

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

    // ---- importing -----------------------------------------------------------------------

    @Test
    void importsARawFileUnderItsSha256() throws Exception {
        Path file = write("disk.img", bytes("raw", 3 * MIB + 17));
        ImageInfo info = importAs(file, "cirros:0.6.2");

        assertEquals(sha256(file), info.digest().hex());
        assertEquals(ImageFormat.RAW, info.format());
        assertEquals(Files.size(file), info.size());
        assertEquals(Files.size(file), info.virtualSize());
        assertEquals(List.of(ImageName.parse("cirros:0.6.2")), info.names());
        assertEquals(-1, Files.mismatch(file, blob(root, info.digest().hex())), "the blob is the file, byte for byte");
        assertEquals(List.of(), stagingFiles(root));

        reopen();
        assertEquals(info, store.resolve("cirros:0.6.2"), "the import survives reopening the store");
    }

    @Test
    void importsAQcow2AsAnOciArtifact() throws Exception {
        Path file = qcow2("cirros.qcow2");
        ImageInfo info = importAs(file, "cirros:0.6.2");
        String hex = info.digest().hex();

        assertEquals(sha256(file), hex);
        assertEquals(ImageFormat.QCOW2, info.format());
        assertEquals(64L * MIB, info.virtualSize());
        assertEquals(65536, info.clusterSize());
        Path blob = blob(root, hex);
        assertEquals(-1, Files.mismatch(file, blob));
        JsonNode qemu = QemuImg.info(blob);
        assertEquals("qcow2", qemu.path("format").asText());
        assertEquals(64L * MIB, qemu.path("virtual-size").asLong());

        assertTrue(Files.readString(root.resolve("oci-layout")).contains("\"imageLayoutVersion\":\"1.0.0\""));
        JsonNode index = StoreFiles.index(root);
        assertEquals(2, index.path("schemaVersion").asInt());
        JsonNode descriptor = StoreFiles.descriptorOf(root, "cirros:0.6.2");
        assertEquals("application/vnd.oci.image.manifest.v1+json", descriptor.path("mediaType").asText());
        assertEquals("application/vnd.vimgfs.image.v1", descriptor.path("artifactType").asText());

        String manifestHex = StoreFiles.hexOf(descriptor.path("digest").asText());
        Path manifestBlob = blob(root, manifestHex);
        assertEquals(manifestHex, sha256(manifestBlob), "the manifest is content-addressed too");
        assertEquals(Files.size(manifestBlob), descriptor.path("size").asLong());
        JsonNode manifest = StoreFiles.json(manifestBlob);
        assertEquals(2, manifest.path("schemaVersion").asInt());
        assertEquals("application/vnd.vimgfs.image.v1", manifest.path("artifactType").asText());
        assertEquals(1, manifest.path("layers").size());
        JsonNode layer = manifest.path("layers").get(0);
        assertEquals("sha256:" + hex, layer.path("digest").asText(), "the layer digest is the by-digest name");
        assertEquals("application/vnd.vimgfs.disk.qcow2", layer.path("mediaType").asText());
        assertEquals(Files.size(file), layer.path("size").asLong());

        assertEquals("application/vnd.vimgfs.image.config.v1+json", manifest.path("config").path("mediaType").asText());
        JsonNode config = StoreFiles.json(blob(root, StoreFiles.hexOf(manifest.path("config").path("digest").asText())));
        assertEquals("qcow2", config.path("format").asText());
        assertEquals(64L * MIB, config.path("virtualSize").asLong());
        assertFalse(config.path("created").asText().isEmpty());
    }

    @Test
    void identicalContentIsStoredOnce() throws Exception {
        byte[] content = bytes("dedup", MIB);
        ImageInfo first = importAs(write("a.img", content), "a:1");
        Set<String> blobs = blobNames(root);

        ImageInfo second = importAs(write("b.img", content), "b:2");

        assertEquals(first.digest(), second.digest());
        assertEquals(blobs, blobNames(root), "a second copy only adds a name");
        assertEquals(List.of(ImageName.parse("a:1"), ImageName.parse("b:2")), second.names());
        assertEquals(1, store.list().size());
        assertEquals(List.of(), stagingFiles(root));
    }

    @Test
    void aPinnedDigestThatDoesNotMatchPlacesNothing() throws Exception {
        importAs(write("other.img", bytes("other", 4096)), "other:1");
        Set<String> blobs = blobNames(root);
        Path file = write("disk.img", bytes("pinned", MIB));
        String wrong = sha256(bytes("something else", 10));

        DigestMismatchException e = assertThrows(DigestMismatchException.class,
                () -> importAs(file, "x:1@sha256:" + wrong));

        assertEquals(sha256(file), e.actual().hex());
        assertEquals(wrong, e.expected().hex());
        assertEquals(blobs, blobNames(root), "no blob was placed");
        assertEquals(List.of(), stagingFiles(root), "no staging file is left behind");
        assertThrows(ImageNotFoundException.class, () -> store.resolve("x:1"));
        assertEquals(Set.of(ImageName.parse("other:1")), store.names().keySet());

        ImageInfo right = importAs(file, "x:1@sha256:" + sha256(file));
        assertEquals(sha256(file), right.digest().hex(), "the right pin places it");
    }

    @Test
    void anEmptyFileIsRejected() throws Exception {
        Path empty = Files.createFile(dir.resolve("empty.img"));
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> importAs(empty, "empty:1"));
        assertEquals(ImageRejectedException.Reason.EMPTY, e.reason());
        assertNothingPlaced();
    }

    @Test
    void aBackingFileOutsideTheStoreIsForbidden() throws Exception {
        Path evil = overlay("evil.qcow2", "/etc/passwd", "raw");
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> importAs(evil, "evil:1"));
        assertEquals(ImageRejectedException.Reason.FORBIDDEN_BACKING, e.reason());
        assertTrue(e.reason().unsafe());
        assertTrue(e.getMessage().contains("/etc/passwd"), e.getMessage());
        assertNothingPlaced();

        Path sneaky = overlay("sneaky.qcow2", "../../" + "a".repeat(64), "qcow2");
        assertEquals(ImageRejectedException.Reason.FORBIDDEN_BACKING,
                assertThrows(ImageRejectedException.class, () -> importAs(sneaky, "sneaky:1")).reason());
        assertNothingPlaced();
    }

    @Test
    void anOverlayOnAStoredBaseKeepsItsBackingDigest() throws Exception {
        ImageInfo base = importAs(qcow2("base.qcow2"), "base:1");
        Path overlay = overlay("vm.qcow2", base.digest().hex(), "qcow2");

        ImageInfo vm = importAs(overlay, "vm:1");

        assertEquals(Optional.of(base.digest()), vm.backing());
        assertEquals(Optional.of(base.digest()), store.resolve("vm:1").backing());
        // QEMU resolves the bare digest next to the overlay: in blobs/sha256/ that is the base's blob.
        String chain = QemuImg.img("info", "--backing-chain", blob(root, vm.digest().hex()));
        assertTrue(chain.contains("image: " + blob(root, base.digest().hex())), chain);
        reopen();
        assertEquals(Optional.of(base.digest()), store.resolve("vm:1").backing());
    }

    @Test
    void anOverlayOnAnUnknownDigestIsRefused() throws Exception {
        Path overlay = overlay("vm.qcow2", sha256(bytes("never stored", 1)), "qcow2");
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> importAs(overlay, "vm:1"));
        assertEquals(ImageRejectedException.Reason.MISSING_BACKING, e.reason());
        assertNothingPlaced();
    }

    @Test
    void aBackingPathIntoTheMountIsAcceptedOnlyWhenTheMountIsKnown() throws Exception {
        Path basefile = qcow2("base.qcow2");
        ImageInfo base = importAs(basefile, "base:1");
        Path viaMount = overlay("vm.qcow2", "/mnt/images/by-digest/sha256/" + base.digest().hex(), "qcow2");
        Path viaTags = overlay("tags.qcow2", "/mnt/images/tags/base/1", "qcow2");

        assertEquals(ImageRejectedException.Reason.FORBIDDEN_BACKING,
                assertThrows(ImageRejectedException.class, () -> importAs(viaMount, "vm:1")).reason(),
                "without the mountpoint the path is just some host file");

        try (ImageStore mounted = ImageStore.open(dir.resolve("mounted"),
                StoreOptions.defaults().withMountRoots(Set.of(Path.of("/mnt/images"))))) {
            mounted.importFile(basefile, Reference.parse("base:1"), n -> { });
            ImageInfo vm = mounted.importFile(viaMount, Reference.parse("vm:1"), n -> { });
            assertEquals(Optional.of(base.digest()), vm.backing());
            assertEquals(ImageRejectedException.Reason.FORBIDDEN_BACKING, assertThrows(ImageRejectedException.class,
                    () -> mounted.importFile(viaTags, Reference.parse("tags:1"), n -> { })).reason());
        }
    }

    @Test
    void aSparseFileImportsSparse() throws Exception {
        Path file = dir.resolve("sparse.img");
        byte[] head = bytes("head", MIB);
        byte[] tail = bytes("tail", MIB);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(head), 0);
            ch.write(ByteBuffer.wrap(tail), 65L * MIB);
        }
        ImageInfo info = importAs(file, "sparse:1");

        assertEquals(sha256(file), info.digest().hex());
        Path blob = blob(root, info.digest().hex());
        assertEquals(66L * MIB, (long) (Long) Files.getAttribute(blob, "unix:size"));
        long allocated = allocatedBytes(blob);
        assertTrue(allocated < 8L * MIB, "the 64 MiB hole stays a hole: " + allocated + " bytes allocated");
    }

    // ---- the upload API ------------------------------------------------------------------

    @Test
    void outOfOrderWritesStillHashRight() throws Exception {
        byte[] content = bytes("out of order", 2 * MIB + 5);
        int half = content.length / 2;
        Upload upload = store.beginUpload();
        upload.write(ByteBuffer.wrap(content, half, content.length - half), half);
        upload.write(ByteBuffer.wrap(content, 0, half), 0);
        assertFalse(upload.hashedInline(), "the second write went backwards");

        ImageInfo info = store.place(upload, Reference.parse("ooo:1"));

        assertEquals(sha256(content), info.digest().hex());
        assertEquals(content.length, info.size());
        assertEquals(-1, Files.mismatch(blob(root, info.digest().hex()), write("expected", content)));
    }

    @Test
    void writesWithHolesAndATruncateHashRight() throws Exception {
        byte[] expected = new byte[5 * MIB];
        byte[] a = bytes("a", 4096);
        byte[] b = bytes("b", 4096);
        System.arraycopy(a, 0, expected, 0, a.length);
        System.arraycopy(b, 0, expected, 2 * MIB, b.length);
        Upload upload = store.beginUpload();
        upload.write(ByteBuffer.wrap(a), 0);
        upload.write(ByteBuffer.wrap(b), 2 * MIB);
        upload.truncate(5 * MIB);
        assertTrue(upload.hashedInline(), "a cp of a sparse file is hashed inline");
        assertEquals(5 * MIB, upload.size());

        ImageInfo info = store.place(upload, Reference.parse("holes:1"));

        assertEquals(sha256(expected), info.digest().hex());
        assertEquals(-1, Files.mismatch(blob(root, info.digest().hex()), write("expected", expected)));
    }

    @Test
    void aShrinkingTruncateHashesWhatRemains() throws Exception {
        byte[] content = bytes("shrink", 3 * MIB);
        Upload upload = store.beginUpload();
        upload.write(ByteBuffer.wrap(content), 0);
        upload.truncate(MIB + 3);
        ImageInfo info = store.place(upload, Reference.parse("shrink:1"));
        assertEquals(sha256(java.util.Arrays.copyOf(content, MIB + 3)), info.digest().hex());
    }

    // ---- names ---------------------------------------------------------------------------

    @Test
    void taggingMovesANameAndTheImageGoesWithItsLastName() throws Exception {
        ImageInfo a = importAs(write("a.img", bytes("a", 4096)), "os:stable");
        ImageInfo b = importAs(write("b.img", bytes("b", 4096)), "os:next");

        store.tag("os:next", ImageName.parse("os:stable"));

        assertEquals(b.digest(), store.resolve("os:stable").digest());
        assertEquals(Optional.empty(), store.image(a.digest()), "a lost its only name");
        store.syncIndex();
        assertFalse(Files.exists(blob(root, a.digest().hex())));

        ImageInfo c = importAs(write("c.img", bytes("c", 4096)), "os:next");
        assertEquals(Map.of(ImageName.parse("os:stable"), b.digest(), ImageName.parse("os:next"), c.digest()),
                store.names(), "importing under a taken name moves it");
        assertEquals(List.of(ImageName.parse("os:stable")), store.image(b.digest()).orElseThrow().names());
    }

    @Test
    void untaggingTheLastNameDeletesManifestConfigAndLayer() throws Exception {
        ImageInfo info = importAs(write("a.img", bytes("a", MIB)), "a:1");
        store.tag("a:1", ImageName.parse("a:2"));
        store.syncIndex();
        List<String> blobs = StoreFiles.blobsOfImage(root, "a:1");
        assertEquals(3, blobs.size());
        assertEquals(info.digest().hex(), blobs.get(2));

        store.untag(ImageName.parse("a:1"));
        assertEquals(Set.copyOf(blobs), blobNames(root), "one name is left, so everything stays");

        store.untag(ImageName.parse("a:2"));
        assertEquals(List.of(), store.list());
        store.syncIndex();
        for (String hex : blobs) {
            assertFalse(Files.exists(blob(root, hex)), hex + " outlived its image");
        }
        assertEquals(Set.of(), blobNames(root));
        assertThrows(ImageNotFoundException.class, () -> store.untag(ImageName.parse("a:2")));
    }

    @Test
    void aBaseStaysWhileAnOverlayNeedsIt() throws Exception {
        ImageInfo base = importAs(qcow2("base.qcow2"), "base:1");
        ImageInfo vm = importAs(overlay("vm.qcow2", base.digest().hex(), "qcow2"), "vm:1");

        store.untag(ImageName.parse("base:1"));

        ImageInfo kept = store.image(base.digest()).orElseThrow(() -> new AssertionError("the base went"));
        assertEquals(List.of(), kept.names());
        assertEquals(base.digest(), store.resolve("sha256:" + base.digest().hex()).digest());
        assertEquals(base.digest().hex(), sha256(blob(root, base.digest().hex())));
        assertTrue(store.fsck(false, n -> { }).clean());
        assertEquals(List.of(), store.collectGarbage(false).removals(), "gc never takes a backing image");
        reopen();
        assertTrue(store.image(base.digest()).isPresent(), "the nameless base is in index.json");

        assertTrue(store.removeImage(vm.digest()));

        assertEquals(List.of(), store.list());
        store.syncIndex();
        assertEquals(Set.of(), blobNames(root), "the base went with its last overlay");
    }

    @Test
    void removingABaseByDigestKeepsItForItsOverlay() throws Exception {
        ImageInfo base = importAs(qcow2("base.qcow2"), "base:1");
        store.tag("base:1", ImageName.parse("base:2"));
        importAs(overlay("vm.qcow2", base.digest().hex(), "qcow2"), "vm:1");

        assertFalse(store.removeImage(base.digest()), "the image stays, nameless");
        assertEquals(List.of(), store.image(base.digest()).orElseThrow().names());
        assertTrue(Files.exists(blob(root, base.digest().hex())));
    }

    // ---- resolving -----------------------------------------------------------------------

    @Test
    void resolvesNamesDigestsAndPrefixes() throws Exception {
        ImageInfo info = importAs(write("a.img", bytes("resolve", 4096)), "example.com/os/fedora:40");
        String hex = info.digest().hex();

        assertEquals(info, store.resolve("example.com/os/fedora:40"));
        assertEquals(info, store.resolve("sha256:" + hex));
        assertEquals(info, store.resolve(hex.substring(0, 3)));
        assertEquals(info, store.resolve("sha256:" + hex.substring(0, 7)));
        assertEquals(info, store.resolve("example.com/os/fedora:40@sha256:" + hex));
        assertThrows(ImageNotFoundException.class, () -> store.resolve("example.com/os/fedora:41"));
        assertThrows(ImageNotFoundException.class, () -> store.resolve("example.com/os/fedora:40@sha256:" + "0".repeat(64)));
        assertThrows(ImageNotFoundException.class, () -> store.resolve("sha256:" + "0".repeat(64)));
        InvalidNameException sha512 = assertThrows(InvalidNameException.class, () -> store.resolve("sha512:" + hex + hex));
        assertTrue(sha512.getMessage().contains("sha512"), sha512.getMessage());
        assertThrows(InvalidNameException.class, () -> store.resolve("Not/A/Name"));
    }

    @Test
    void anAmbiguousPrefixSaysSo() throws Exception {
        Map<String, byte[]> byPrefix = new HashMap<>();
        byte[][] pair = null;
        for (int i = 0; pair == null; i++) {
            byte[] content = bytes("ambiguous " + i, 512);
            byte[] earlier = byPrefix.putIfAbsent(sha256(content).substring(0, 3), content);
            if (earlier != null) {
                pair = new byte[][] {earlier, content};
            }
        }
        ImageInfo one = importAs(write("one.img", pair[0]), "one:1");
        ImageInfo two = importAs(write("two.img", pair[1]), "two:1");
        String prefix = one.digest().hex().substring(0, 3);

        AmbiguousReferenceException e = assertThrows(AmbiguousReferenceException.class, () -> store.resolve(prefix));
        assertTrue(e.getMessage().contains(one.digest().shortHex()) && e.getMessage().contains(two.digest().shortHex()),
                e.getMessage());
        assertEquals(two, store.resolve(two.digest().hex().substring(0, 12)), "more digits settle it");
    }

    // ---- garbage collection --------------------------------------------------------------

    @Test
    void gcListsOrphansInADryRunAndDeletesThemForReal() throws Exception {
        ImageInfo kept = importAs(write("a.img", bytes("kept", 4096)), "kept:1");
        byte[] junk = "an orphan blob".getBytes(StandardCharsets.UTF_8);
        Path orphan = Files.write(blob(root, sha256(junk)), junk);
        Path stale = Files.write(root.resolve(".vimgfs/staging/crashed.part"), junk);
        Set<String> live = blobNames(root);
        live.remove(orphan.getFileName().toString());

        GcReport dry = store.collectGarbage(true);

        assertTrue(dry.dryRun());
        assertEquals(Set.of(orphan, stale), Set.copyOf(dry.removals().stream().map(GcReport.Removal::file).toList()));
        dry.removals().forEach(r -> assertFalse(r.reason().isBlank()));
        assertEquals(2L * junk.length, dry.bytes());
        assertTrue(Files.exists(orphan) && Files.exists(stale), "a dry run deletes nothing");

        GcReport real = store.collectGarbage(false);

        assertEquals(2, real.removals().size());
        assertFalse(Files.exists(orphan));
        assertFalse(Files.exists(stale));
        assertEquals(live, blobNames(root));
        assertEquals(kept.digest().hex(), sha256(blob(root, kept.digest().hex())));
    }

    @Test
    void gcLeavesAnOpenUploadAlone() throws Exception {
        byte[] content = bytes("uploading", MIB);
        Upload upload = store.beginUpload();
        upload.write(ByteBuffer.wrap(content, 0, 4096), 0);
        Files.write(root.resolve(".vimgfs/staging/stale.part"), new byte[] {1});

        assertEquals(1, store.removeStaleStaging().size());
        GcReport gc = store.collectGarbage(false);

        assertEquals(List.of(), gc.removals());
        assertEquals(1, stagingFiles(root).size(), "the upload's staging file is still there");
        upload.write(ByteBuffer.wrap(content, 4096, content.length - 4096), 4096);
        ImageInfo info = store.place(upload, Reference.parse("late:1"));
        assertEquals(sha256(content), info.digest().hex());
    }

    // ---- fsck ----------------------------------------------------------------------------

    @Test
    void fsckOfAHealthyStoreIsClean() throws Exception {
        importAs(write("a.img", bytes("a", MIB)), "a:1");
        importAs(qcow2("b.qcow2"), "b:1");
        FsckReport report = store.fsck(false, n -> { });
        assertTrue(report.clean(), report.problems()::toString);
        assertEquals(blobNames(root).size(), report.blobsChecked());
        assertEquals(List.of(), report.repairs());
    }

    @Test
    void fsckFindsACorruptLayerAndAMissingManifestAndRepairDropsOnlyThose() throws Exception {
        ImageInfo corrupt = importAs(write("c.img", bytes("corrupt", MIB)), "corrupt:1");
        ImageInfo lost = importAs(write("l.img", bytes("lost", MIB)), "lost:1");
        ImageInfo good = importAs(qcow2("good.qcow2"), "good:1");
        store.tag("good:1", ImageName.parse("good:2"));
        store.syncIndex();
        String lostManifest = StoreFiles.blobsOfImage(root, "lost:1").get(0);

        StoreFiles.unprotect(blob(root, corrupt.digest().hex()));
        flipByte(blob(root, corrupt.digest().hex()), 1000);
        StoreFiles.unprotect(blob(root, lostManifest));
        Files.delete(blob(root, lostManifest));

        FsckReport report = store.fsck(false, n -> { });
        assertFalse(report.clean());
        assertTrue(report.problems().stream().anyMatch(p -> p.subject().equals(corrupt.digest().toString())
                && p.what().contains("corrupt")), report.problems()::toString);
        assertTrue(report.problems().stream().anyMatch(p -> p.subject().equals("sha256:" + lostManifest)
                && p.what().contains("missing")), report.problems()::toString);
        assertTrue(Files.exists(blob(root, corrupt.digest().hex())), "fsck without repair changes nothing");

        FsckReport repaired = store.fsck(true, n -> { });

        String repairs = String.join("\n", repaired.repairs());
        assertTrue(repairs.contains("corrupt:1") && repairs.contains("lost:1"), repairs);
        assertFalse(repairs.contains("good:"), repairs);
        assertTrue(store.fsck(false, n -> { }).clean(), "clean after repair");
        assertEquals(Set.of(ImageName.parse("good:1"), ImageName.parse("good:2")), store.names().keySet());
        assertEquals(List.of(good.digest()), store.list().stream().map(ImageInfo::digest).toList());
        assertThrows(ImageNotFoundException.class, () -> store.resolve("lost:1"));
        assertEquals(good.digest().hex(), sha256(blob(root, good.digest().hex())));
        assertFalse(Files.exists(blob(root, lost.digest().hex())), "the lost image's layer was collected");
        assertEquals(StoreFiles.liveBlobs(root), blobNames(root));
        reopen();
        assertEquals(Set.of(ImageName.parse("good:1"), ImageName.parse("good:2")), store.names().keySet());
    }

    // ---- opening -------------------------------------------------------------------------

    @Test
    void refusesADirectoryThatIsNotAStore() throws Exception {
        Path home = Files.createDirectories(dir.resolve("home"));
        Files.writeString(home.resolve("notes.txt"), "mine");
        StoreDamagedException e = assertThrows(StoreDamagedException.class, () -> ImageStore.open(home));
        assertTrue(e.getMessage().contains("not a vimgfs store"), e.getMessage());
        try (var entries = Files.list(home)) {
            assertEquals(List.of(home.resolve("notes.txt")), entries.toList(), "nothing was created in it");
        }
    }

    @Test
    void anIndexWithoutOurCachedAnnotationsIsReadFromTheBlobs() throws Exception {
        importAs(write("a.img", bytes("a", MIB)), "a:1");
        ImageInfo base = importAs(qcow2("base.qcow2"), "base:1");
        importAs(overlay("vm.qcow2", base.digest().hex(), "qcow2"), "example.com/vm:1");
        store.untag(ImageName.parse("base:1"));
        List<ImageInfo> before = store.list();
        store.close();

        JsonNode index = StoreFiles.index(root);
        int stripped = 0;
        for (JsonNode descriptor : index.path("manifests")) {
            ObjectNode annotations = (ObjectNode) descriptor.path("annotations");
            List<String> ours = new ArrayList<>();
            annotations.fieldNames().forEachRemaining(f -> {
                if (f.startsWith("io.vimgfs.")) {
                    ours.add(f);
                }
            });
            annotations.remove(ours);
            stripped += ours.size();
        }
        assertTrue(stripped > 0);
        Files.write(root.resolve("index.json"), JSON.writeValueAsBytes(index));

        store = ImageStore.open(root);

        assertEquals(before, store.list());
        assertEquals(Optional.of(base.digest()), store.resolve("example.com/vm:1").backing());
        assertTrue(store.fsck(false, n -> { }).clean());
    }

    // ---- races ---------------------------------------------------------------------------

    /**
     * Content already stored is placed without probing; if its image is removed before the
     * placing takes the lock, the placing must still work (it is new content again).
     */
    @Test
    void placingContentWhoseImageIsRemovedMeanwhileStillPlacesIt() throws Exception {
        AtomicReference<Consumer<CrashPoint>> hook = new AtomicReference<>(p -> { });
        try (ImageStore racy = ImageStore.open(dir.resolve("racy"),
                StoreOptions.defaults().withCrashHook(p -> hook.get().accept(p)))) {
            byte[] content = bytes("raced", MIB);
            racy.importFile(write("a.img", content), Reference.parse("a:1"), n -> { });

            CountDownLatch untagHoldsTheLock = new CountDownLatch(1);
            AtomicReference<Thread> placer = new AtomicReference<>();
            hook.set(point -> {
                if (point == CrashPoint.INDEX_STAGED && Thread.currentThread() != placer.get()) {
                    untagHoldsTheLock.countDown();
                    awaitBlocked(placer);
                }
            });
            CompletableFuture<Void> untag = CompletableFuture.runAsync(() -> {
                try {
                    racy.untag(ImageName.parse("a:1"));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            assertTrue(untagHoldsTheLock.await(10, TimeUnit.SECONDS));
            placer.set(Thread.currentThread());
            Upload upload = racy.beginUpload();
            upload.write(ByteBuffer.wrap(content), 0);

            ImageInfo info = racy.place(upload, Reference.parse("b:1"));

            untag.get(10, TimeUnit.SECONDS);
            assertEquals(sha256(content), info.digest().hex());
            assertEquals(Set.of(ImageName.parse("b:1")), racy.names().keySet());
            assertEquals(info.digest().hex(), sha256(blob(dir.resolve("racy"), info.digest().hex())));
            assertTrue(racy.fsck(false, n -> { }).clean());
        }
    }

    /** Waits until the thread is parked (on the store lock), without sleeping. */
    private static void awaitBlocked(AtomicReference<Thread> thread) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (thread.get() == null || thread.get().getState() != Thread.State.WAITING
                || java.util.Arrays.stream(thread.get().getStackTrace())
                        .noneMatch(frame -> frame.getClassName().equals(StoreLock.class.getName()))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the placing thread never blocked on the store lock");
            }
            Thread.onSpinWait();
        }
    }

    // ---- helpers -------------------------------------------------------------------------

    private ImageInfo importAs(Path file, String reference) throws IOException {
        return store.importFile(file, Reference.parse(reference), n -> { });
    }

    private void reopen() throws IOException {
        store.close();
        store = ImageStore.open(root);
    }

    private void assertNothingPlaced() throws IOException {
        assertEquals(List.of(), store.list());
        assertEquals(Set.of(), blobNames(root));
        assertEquals(List.of(), stagingFiles(root));
    }

    private Path write(String name, byte[] content) throws IOException {
        return Files.write(dir.resolve(name), content);
    }

    private Path qcow2(String name) {
        Path file = dir.resolve(name);
        QemuImg.create(file, "qcow2", "64M");
        QemuImg.io(file, "write -P 0x5a 0 1M");
        return file;
    }

    private Path overlay(String name, String backing, String backingFormat) {
        Path file = dir.resolve(name);
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, "-u", file, "64M");
        return file;
    }

    private static void flipByte(Path file, long offset) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer one = ByteBuffer.allocate(1);
            ch.read(one, offset);
            one.put(0, (byte) ~one.get(0)).rewind();
            ch.write(one, offset);
        }
    }

    private static long allocatedBytes(Path file) throws IOException, InterruptedException {
        Process stat = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).redirectErrorStream(true).start();
        String[] out = new String(stat.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim().split(" ");
        assertEquals(0, stat.waitFor());
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }

    // ---- the journal ---------------------------------------------------------------------

    @Test
    void aChangeWhoseCallerSawAFailureNeverCommitsLater() throws Exception {
        importAs(write("a.img", bytes("a", 4096)), "a:1");
        Path index = root.resolve("index.json");
        try (ImageStore other = ImageStore.open(root)) {
            other.tag("a:1", ImageName.parse("b:1"));
            other.syncIndex();
            byte[] sound = Files.readAllBytes(index);
            Files.writeString(index, "{ damaged"); // reloading the other process's commit fails

            assertThrows(StoreDamagedException.class, () -> store.tag("a:1", ImageName.parse("c:1")));

            Files.write(index, sound);
            store.tag("a:1", ImageName.parse("d:1"));
        }
        assertEquals(Set.of("a:1", "b:1", "d:1"), StoreFiles.names(store), "c:1 was refused, and stays refused");
        reopen();
        assertEquals(Set.of("a:1", "b:1", "d:1"), StoreFiles.names(store));
    }

    @Test
    void anotherProcessSeesACommitByTheJournalAloneAndIndexJsonCatchesUpWithinASecond() throws Exception {
        importAs(write("a.img", bytes("a", 4096)), "a:1");
        store.syncIndex();
        Consumer<CrashPoint> noIndexWrites = point -> {
            if (point == CrashPoint.INDEX_STAGED) {
                throw new java.io.UncheckedIOException(new IOException("this writer never rewrites index.json"));
            }
        };
        try (ImageStore writer = ImageStore.open(root, StoreOptions.defaults().withCrashHook(noIndexWrites))) {
            writer.tag("a:1", ImageName.parse("b:1"));
            assertFalse(Files.readString(root.resolve("index.json")).contains("b:1"));

            store.refresh(); // true here, unless this store's own background rewrite (under the lock) took the commit first
            assertEquals(Set.of("a:1", "b:1"), StoreFiles.names(store));
            assertFalse(store.refresh(), "two stats, nothing new");

            // "within about a second"; wider for a loaded 2-core machine, where the background thread may wait its turn
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!Files.readString(root.resolve("index.json")).contains("b:1") && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(Files.readString(root.resolve("index.json")).contains("b:1"),
                    "the process that noticed the commit rewrote index.json in the background");
            StoreFiles.assertSkopeoReads(root, "b:1");
            assertEquals(Set.of("a:1", "b:1"), StoreFiles.names(writer), "the writer took the other's rewrite");
        }
    }

    @Test
    void nameChangesCostAJournalFrameEachAndIndexJsonIsRewrittenAtMostAboutOnceASecond() throws Exception {
        importAs(write("a.img", bytes("a", 4096)), "a:1");
        store.close();
        java.util.concurrent.atomic.AtomicInteger frames = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger rewrites = new java.util.concurrent.atomic.AtomicInteger();
        store = ImageStore.open(root, StoreOptions.defaults().withCrashHook(point -> {
            if (point == CrashPoint.JOURNAL_SYNCED) {
                frames.incrementAndGet();
            } else if (point == CrashPoint.INDEX_REPLACED) {
                rewrites.incrementAndGet();
            }
        }));
        long start = System.nanoTime();
        for (int i = 0; i < 300; i++) {
            store.tag("a:1", ImageName.parse("t:" + i));
        }
        // rounded up: 1.9 s of tagging may see a rewrite at 0.0, 1.0 and 1.9 s
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start + TimeUnit.SECONDS.toNanos(1) - 1);
        assertEquals(300, frames.get(), "one frame (and one fsync) per change");
        assertTrue(rewrites.get() <= seconds + 2, rewrites + " index rewrites in " + seconds + " s");
        reopen();
        assertEquals(301, store.names().size(), "every name is durable");
    }
}
