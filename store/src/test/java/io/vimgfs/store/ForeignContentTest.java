package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * OCI content that is not a disk (a container image, a referrer) kept byte for byte under a tag
 * or its digest: durable through the journal, in index.json as skopeo reads it, kept by gc while
 * named and collected after, never a disk image, and consistent after a crash at any step.
 */
class ForeignContentTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String MANIFEST = "application/vnd.oci.image.manifest.v1+json";

    @TempDir
    Path dir;

    /** A container image's config, layer and manifest, the same for the same seed in every process. */
    record ContainerImage(byte[] config, byte[] layer, byte[] manifest) {
        static ContainerImage of(String seed, Digest subject) {
            byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"" + seed + "\"}")
                    .getBytes(StandardCharsets.UTF_8);
            byte[] layer = StoreFiles.bytes("layer " + seed, 256 * 1024);
            ObjectNode manifest = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", MANIFEST);
            manifest.set("config", descriptor("application/vnd.oci.image.config.v1+json", config));
            manifest.putArray("layers").add(descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer));
            if (subject != null) {
                manifest.put("artifactType", "application/vnd.example.sbom");
                manifest.putObject("subject").put("mediaType", MANIFEST).put("digest", subject.toString()).put("size", 1);
            }
            try {
                return new ContainerImage(config, layer, JSON.writeValueAsBytes(manifest));
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        }

        Digest digest() {
            return new Digest(StoreFiles.sha256(manifest));
        }

        /** Pushes it as a registry client does: blobs as uploads, then the manifest. */
        Digest keep(ImageStore store, String repository, String reference) throws IOException {
            Map<Digest, Upload> pushed = new HashMap<>();
            try {
                for (byte[] blob : List.of(config, layer)) {
                    Upload upload = store.beginUpload();
                    upload.write(ByteBuffer.wrap(blob), 0);
                    pushed.put(upload.seal(), upload);
                }
                return new RegistryContent(store).keep(repository, reference, manifest, MANIFEST, pushed);
            } finally {
                for (Upload upload : pushed.values()) {
                    upload.abandon();
                }
            }
        }
    }

    private static ObjectNode descriptor(String mediaType, byte[] blob) {
        return JSON.createObjectNode().put("mediaType", mediaType).put("digest", "sha256:" + StoreFiles.sha256(blob))
                .put("size", blob.length);
    }

    @Test
    void keptContentIsServedByteForByteSurvivesReopeningAndGoesWithItsLastName() throws Exception {
        Path root = dir.resolve("store");
        ContainerImage image = ContainerImage.of("a", null);
        ContainerImage sbom = ContainerImage.of("sbom", image.digest());
        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(image.digest(), image.keep(store, "library/app", "1"));
            sbom.keep(store, "library/app", sbom.digest().toString());
            RegistryContent content = new RegistryContent(store);
            assertArrayEquals(image.manifest(), content.manifest("library/app", "1").orElseThrow().bytes());
            assertEquals(List.of("1"), content.tags("library/app"), "the referrer has no tag");
            assertArrayEquals(sbom.manifest(), content.manifest("library/app", sbom.digest().toString()).orElseThrow().bytes());
            List<ObjectNode> referrers = content.referrers("library/app", image.digest());
            assertEquals(1, referrers.size());
            assertEquals("application/vnd.example.sbom", referrers.get(0).path("artifactType").asText());
            assertEquals(List.of(), store.list(), "kept content is never a disk image");
            store.syncIndex();
        }
        JsonNode index = JSON.readTree(root.resolve("index.json").toFile());
        assertTrue(index.toString().contains("\"org.opencontainers.image.ref.name\":\"library/app:1\""), index.toString());
        StoreFiles.assertSkopeoReads(root, "library/app:1");

        try (ImageStore store = ImageStore.open(root)) {
            RegistryContent content = new RegistryContent(store);
            assertArrayEquals(image.manifest(), content.manifest("library/app", "1").orElseThrow().bytes());
            assertEquals(List.of(), store.collectGarbage(false).removals(), "gc keeps what is named");
            assertTrue(store.fsck(false, n -> { }).clean());
            String layer = StoreFiles.sha256(image.layer());
            assertTrue(Files.exists(StoreFiles.blob(root, layer)));

            assertEquals(1, content.forget("library/app", "1"));
            assertEquals(0, content.forget("library/app", "1"), "already gone");
            assertTrue(content.manifest("library/app", "1").isEmpty());
            store.collectGarbage(false);
            assertFalse(Files.exists(StoreFiles.blob(root, layer)), "gc collects it once unnamed");
            assertEquals(1, content.forget("library/app", sbom.digest().toString()));
        }
        StoreFiles.assertConsistent(root);
    }

    @Test
    void aManifestNamingABlobNeitherStoredNorPushedIsRefusedAndLeavesNothing() throws Exception {
        Path root = dir.resolve("store");
        ContainerImage image = ContainerImage.of("b", null);
        try (ImageStore store = ImageStore.open(root)) {
            Upload config = store.beginUpload();
            config.write(ByteBuffer.wrap(image.config()), 0);
            Map<Digest, Upload> onlyConfig = Map.of(config.seal(), config);
            BlobUnknownException e = assertThrows(BlobUnknownException.class, () -> new RegistryContent(store)
                    .keep("x/y", "1", image.manifest(), MANIFEST, onlyConfig));
            assertTrue(e.getMessage().contains(StoreFiles.sha256(image.layer())), e.getMessage());
            config.abandon();
            assertTrue(new RegistryContent(store).manifest("x/y", "1").isEmpty());
        }
        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertEquals(0, after.collected(), "the refused push left no blob behind");
    }

    @Test
    void aTagNamesOneThingADiskPlacedUnderItReplacesKeptContentAndBackAgain() throws Exception {
        Path root = dir.resolve("store");
        ContainerImage image = ContainerImage.of("c", null);
        try (ImageStore store = ImageStore.open(root)) {
            image.keep(store, "vm/disk", "1");
            store.importFile(Files.write(dir.resolve("d.img"), StoreFiles.bytes("disk", MIB)), Reference.parse("vm/disk:1"), n -> { });
            RegistryContent content = new RegistryContent(store);
            assertFalse(java.util.Arrays.equals(image.manifest(), content.manifest("vm/disk", "1").orElseThrow().bytes()));
            assertTrue(store.image(ImageName.parse("vm/disk:1")).isPresent());

            image.keep(store, "vm/disk", "1");
            assertArrayEquals(image.manifest(), content.manifest("vm/disk", "1").orElseThrow().bytes());
            assertTrue(store.image(ImageName.parse("vm/disk:1")).isEmpty(), "the disk lost the tag");
        }
        StoreFiles.assertConsistent(root);
    }

    /** A process that dies at any step of keeping content leaves it there exactly when its journal frame was written. */
    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, names = {"LAYER_PLACED", "JOURNAL_TORN", "JOURNAL_WRITTEN", "JOURNAL_SYNCED",
        "INDEX_STAGED", "INDEX_REPLACED"})
    void aCrashAtAnyStepOfKeepingContentLeavesAConsistentStore(CrashPoint point) throws Exception {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("keep.img"), StoreFiles.bytes("keep", MIB)), Reference.parse("keep:1"), n -> { });
        }
        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), point.name(), "keep", "library/app", "1");
        assertEquals(CrashingImporter.HALT_STATUS, child.status(), () -> "the child should halt at " + point + ":\n" + child.output());

        StoreFiles.Outcome after = StoreFiles.assertConsistent(root);
        assertTrue(after.has("keep:1"));
        boolean written = point != CrashPoint.LAYER_PLACED && point != CrashPoint.JOURNAL_TORN;
        try (ImageStore store = ImageStore.open(root)) {
            Map<String, Object> seen = new HashMap<>();
            new RegistryContent(store).manifest("library/app", "1").ifPresent(m -> seen.put("manifest", m.bytes()));
            assertEquals(written, seen.containsKey("manifest"), "kept exactly when its frame was written");
            if (written) {
                assertArrayEquals(ContainerImage.of("crash", null).manifest(), (byte[]) seen.get("manifest"));
                assertTrue(Files.exists(StoreFiles.blob(root, StoreFiles.sha256(ContainerImage.of("crash", null).layer()))));
            }
        }
    }
}
