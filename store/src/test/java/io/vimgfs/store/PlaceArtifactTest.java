package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.blobNames;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vimgfs pull} of a vimgfs artifact places it byte for byte: its manifest keeps the digest
 * it had where it came from, and a manifest that lies about its layer (format, virtual size,
 * digest, backing, a config it does not name) is refused with nothing of it stored or named.
 */
class PlaceArtifactTest {
    @TempDir
    Path dir;
    private ImageStore source;
    private ImageStore target;
    private int images;

    @BeforeEach
    void openStores() throws IOException {
        source = ImageStore.open(dir.resolve("source"));
        target = ImageStore.open(dir.resolve("target"));
    }

    @AfterEach
    void closeStores() throws IOException {
        source.close();
        target.close();
    }

    @Test
    void anArtifactIsPlacedByteForByteAndKeepsItsManifestDigest() throws IOException {
        ImageInfo original = importQcow2(source, "cirros:1");
        ImageStore.Artifact artifact = source.artifact(original.digest());

        ImageInfo placed = target.placeArtifact(layerUpload(artifact), artifact.manifest(), artifact.config(), Optional.empty(),
                Reference.parse("cirros:pulled"));

        assertEquals(original.digest(), placed.digest());
        assertEquals("qcow2", placed.format().id());
        ImageStore.Artifact copy = target.artifact(placed.digest());
        assertArrayEquals(artifact.manifest(), copy.manifest(), "the manifest is stored as given");
        assertArrayEquals(artifact.config(), copy.config());
        target.syncIndex(); // index.json is rewritten in the background; other tools read it once it is
        assertEquals(sha256(artifact.manifest()), StoreFiles.descriptorOf(target.root(), "cirros:pulled").path("digest").asText(),
                "index.json names the manifest by the digest it had in the source store");
        assertTrue(target.fsck(false, n -> { }).clean());
    }

    @Test
    void aManifestThatLiesAboutTheLayersFormatIsRefused() throws IOException {
        ImageStore.Artifact artifact = source.artifact(importQcow2(source, "cirros:1").digest());
        byte[] config = OciLayout.configJson(ImageFormat.RAW, 64L << 20, 0, Optional.empty(), Instant.EPOCH);
        byte[] manifest = manifest(config, ImageFormat.RAW, artifact);

        assertRefused(ImageRejectedException.class, artifact, manifest, config, "the layer is qcow2");
    }

    @Test
    void aManifestThatLiesAboutTheVirtualSizeIsRefused() throws IOException {
        ImageStore.Artifact artifact = source.artifact(importQcow2(source, "cirros:1").digest());
        byte[] config = OciLayout.configJson(ImageFormat.QCOW2, 1L << 40, 65536, Optional.empty(), Instant.EPOCH);

        assertRefused(ImageRejectedException.class, artifact, manifest(config, ImageFormat.QCOW2, artifact), config,
                "virtual size");
    }

    @Test
    void aConfigTheManifestDoesNotNameIsRefused() throws IOException {
        ImageStore.Artifact artifact = source.artifact(importQcow2(source, "cirros:1").digest());
        byte[] other = OciLayout.configJson(ImageFormat.QCOW2, 64L << 20, 65536, Optional.empty(), Instant.EPOCH);

        assertRefused(DigestMismatchException.class, artifact, artifact.manifest(), other, "");
    }

    @Test
    void aConfigThatNamesABackingTheLayerDoesNotHaveIsRefused() throws IOException {
        ImageInfo base = importQcow2(source, "base:1");
        ImageStore.Artifact artifact = source.artifact(importQcow2(source, "cirros:1").digest());
        Optional<Digest> invented = Optional.of(base.digest());
        byte[] config = OciLayout.configJson(ImageFormat.QCOW2, 64L << 20, 65536, invented, Instant.EPOCH);

        assertRefused(ImageRejectedException.class, artifact, manifest(config, ImageFormat.QCOW2, artifact), config,
                "backing");
    }

    @Test
    void anOverlayWhoseBaseIsNotStoredIsRefusedUntilTheBaseIsPulled() throws IOException {
        ImageInfo base = importQcow2(source, "base:1");
        Path overlay = dir.resolve("vm.qcow2");
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", base.digest().hex(), "-F", "qcow2", "-u", overlay, "64M");
        ImageStore.Artifact artifact = source.artifact(
                source.importFile(overlay, Reference.parse("vm:1"), n -> { }).digest());

        ImageRejectedException refused = assertThrows(ImageRejectedException.class, () -> target.placeArtifact(
                layerUpload(artifact), artifact.manifest(), artifact.config(), Optional.empty(), Reference.parse("vm:1")));
        assertTrue(refused.getMessage().contains("pull the base image first"), refused.getMessage());
        assertEquals(Set.of(), target.names().keySet());

        ImageStore.Artifact baseArtifact = source.artifact(base.digest());
        target.placeArtifact(layerUpload(baseArtifact), baseArtifact.manifest(), baseArtifact.config(), Optional.empty(),
                Reference.parse("base:1"));
        ImageInfo placed = target.placeArtifact(layerUpload(artifact), artifact.manifest(), artifact.config(), Optional.empty(),
                Reference.parse("vm:1"));
        assertEquals(Optional.of(base.digest()), placed.backing());
    }

    @Test
    void anArtifactWithAChunkIndexKeepsItThroughReopenGcAndUntag() throws IOException {
        ImageStore.Artifact artifact = source.artifact(importRaw(source, "vm:1", 3 * (1 << 20) + 5).digest());
        ChunkIndex index = chunkIndex(artifact);
        byte[] manifest = index.addTo(artifact.manifest());

        ImageInfo placed = target.placeArtifact(layerUpload(artifact), manifest, artifact.config(), Optional.of(index.bytes()),
                Reference.parse("vm:pulled"));

        assertEquals(artifact.layer(), placed.digest());
        String chunks = index.digest().hex();
        assertTrue(blobNames(target.root()).contains(chunks), "the chunk index is stored as a blob");
        assertArrayEquals(manifest, target.artifact(placed.digest()).manifest(), "the manifest naming it is stored as given");
        assertTrue(target.collectGarbage(false).removals().isEmpty(), "gc keeps the index of a named image");
        assertTrue(target.fsck(false, n -> { }).clean());
        target.close();
        target = ImageStore.open(dir.resolve("target")); // from the journal
        assertArrayEquals(index.bytes(), target.artifact(placed.digest()).chunks().orElseThrow());
        target.syncIndex();
        target.close();
        target = ImageStore.open(dir.resolve("target")); // from index.json and the catalog cache
        assertArrayEquals(index.bytes(), target.artifact(placed.digest()).chunks().orElseThrow());
        StoreFiles.assertSkopeoReads(target.root(), "vm:pulled");

        target.untag(ImageName.parse("vm:pulled"));
        target.syncIndex(); // the index writer sweeps what a change dropped
        assertFalse(blobNames(target.root()).contains(artifact.layer().hex()));
        assertFalse(blobNames(target.root()).contains(chunks), "the index goes with the image's last name");
        assertTrue(target.fsck(false, n -> { }).clean());
    }

    @Test
    void aChunkIndexThatIsNotTheOneTheManifestNamesIsRefused() throws IOException {
        ImageStore.Artifact artifact = source.artifact(importRaw(source, "vm:1", 2 * (1 << 20)).digest());
        ChunkIndex index = chunkIndex(artifact);
        byte[] manifest = index.addTo(artifact.manifest());
        byte[] other = chunkIndex(source.artifact(importRaw(source, "vm:2", 2 * (1 << 20)).digest())).bytes();
        byte[] malformed = index.bytes();
        malformed[0] = 'X';
        byte[] namingMalformed = OciLayout.withChunkIndex(artifact.manifest(), Digest.of(BlobFiles.sha256(artifact.manifest())),
                Digest.of(BlobFiles.sha256(malformed)), malformed.length);

        assertChunksRefused(DigestMismatchException.class, artifact, manifest, Optional.of(other), "");
        assertChunksRefused(ImageRejectedException.class, artifact, manifest, Optional.empty(), "but none was given");
        assertChunksRefused(ImageRejectedException.class, artifact, artifact.manifest(), Optional.of(index.bytes()),
                "the manifest names none");
        assertChunksRefused(ImageRejectedException.class, artifact, namingMalformed, Optional.of(malformed), "VIMGCHK1");
    }

    private void assertChunksRefused(Class<? extends Exception> kind, ImageStore.Artifact artifact, byte[] manifest,
            Optional<byte[]> chunks, String why) throws IOException {
        Set<String> blobsBefore = blobNames(target.root());
        Exception refused = assertThrows(kind, () -> target.placeArtifact(layerUpload(artifact), manifest, artifact.config(),
                chunks, Reference.parse("liar:1")));
        assertTrue(refused.getMessage().contains(why), refused.getMessage());
        assertEquals(Set.of(), target.names().keySet(), "nothing is named");
        assertEquals(blobsBefore, blobNames(target.root()), "nothing of it is stored");
    }

    private ChunkIndex chunkIndex(ImageStore.Artifact artifact) throws IOException {
        try (java.nio.channels.FileChannel layer = source.openImage(artifact.layer())) {
            return ChunkIndex.compute(layer, artifact.layerSize(), n -> { });
        }
    }

    private ImageInfo importRaw(ImageStore store, String reference, int size) throws IOException {
        Path file = Files.write(dir.resolve(reference.replace(':', '-') + ".img"), StoreFiles.bytes(reference, size));
        return store.importFile(file, Reference.parse(reference), n -> { });
    }

    private void assertRefused(Class<? extends Exception> kind, ImageStore.Artifact artifact, byte[] manifest, byte[] config,
            String why) throws IOException {
        Set<String> blobsBefore = blobNames(target.root());
        Set<ImageName> namesBefore = Set.copyOf(target.names().keySet());
        Exception refused = assertThrows(kind, () -> target.placeArtifact(layerUpload(artifact), manifest, config, Optional.empty(),
                Reference.parse("liar:1")));
        assertTrue(refused.getMessage().contains(why), refused.getMessage());
        assertEquals(namesBefore, Set.copyOf(target.names().keySet()), "nothing is named");
        assertEquals(blobsBefore, blobNames(target.root()), "nothing of it is stored");
        assertEquals(java.util.List.of(), StoreFiles.stagingFiles(target.root()), "its upload is gone");
    }

    private static byte[] manifest(byte[] config, ImageFormat format, ImageStore.Artifact artifact) {
        return OciLayout.manifestJson(Digest.of(BlobFiles.sha256(config)), config.length, format, artifact.layer(),
                artifact.layerSize(), Instant.EPOCH);
    }

    private Upload layerUpload(ImageStore.Artifact artifact) throws IOException {
        Upload upload = target.beginUpload();
        try (InputStream in = Channels.newInputStream(source.openImage(artifact.layer()))) {
            byte[] bytes = in.readAllBytes();
            upload.write(ByteBuffer.wrap(bytes), 0);
        }
        return upload;
    }

    private ImageInfo importQcow2(ImageStore store, String reference) throws IOException {
        return store.importFile(qcow2(reference.replace(':', '-') + ".qcow2"), Reference.parse(reference), n -> { });
    }

    private Path qcow2(String name) throws IOException {
        Path file = dir.resolve(name);
        Files.deleteIfExists(file);
        QemuImg.create(file, "qcow2", "64M");
        QemuImg.io(file, "write -P " + (++images) + " 0 1M"); // distinct content for each image
        return file;
    }

    private static String sha256(byte[] content) {
        return "sha256:" + StoreFiles.sha256(content);
    }
}
