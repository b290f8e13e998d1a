package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The catalog cache a store opens from is only ever a faster way to read index.json: an index
 * another tool rewrote, a torn cache, or a missing one all open to what index.json says.
 */
class CatalogCacheTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void anIndexRewrittenByAnotherToolIsReadAndTheCacheIsNot() throws Exception {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            store.importFile(Files.write(dir.resolve("a.img"), StoreFiles.bytes("a", 4096)), Reference.parse("a:1"), n -> { });
            store.importFile(Files.write(dir.resolve("b.img"), StoreFiles.bytes("b", 4096)), Reference.parse("b:1"), n -> { });
        }
        Path cache = root.resolve(".vimgfs").resolve(CatalogCache.FILE);
        assertTrue(Files.exists(cache), "the index writer left a cache");

        // another tool (skopeo delete, a script) drops b:1 from index.json and keeps the rest as it was
        ObjectNode index = (ObjectNode) JSON.readTree(root.resolve("index.json").toFile());
        ArrayNode manifests = (ArrayNode) index.path("manifests");
        for (int i = manifests.size() - 1; i >= 0; i--) {
            if (manifests.get(i).path("annotations").path(OciLayout.REF_NAME).asText().equals("b:1")) {
                manifests.remove(i);
            }
        }
        Files.write(root.resolve("index.json"), JSON.writeValueAsBytes(index));

        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(Set.of(ImageName.parse("a:1")), store.names().keySet(), "index.json is the truth, not the cache");
            assertTrue(store.fsck(false, n -> { }).clean());
        }
    }

    @Test
    void aTornOrMissingCacheOpensToWhatIndexJsonSaysAndIsWrittenAgain() throws Exception {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            for (int i = 0; i < 20; i++) {
                store.importFile(Files.write(dir.resolve(i + ".img"), StoreFiles.bytes("img" + i, 2048)),
                        Reference.parse("app:" + i), n -> { });
            }
        }
        Path cache = root.resolve(".vimgfs").resolve(CatalogCache.FILE);
        byte[] whole = Files.readAllBytes(cache);
        Files.write(cache, java.util.Arrays.copyOf(whole, whole.length / 3)); // a power cut after an unsynced write
        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(20, store.names().size());
            assertTrue(store.fsck(false, n -> { }).clean());
        }
        assertEquals(whole.length, Files.size(cache), "opening from index.json wrote the cache again");

        Files.delete(cache);
        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(20, store.names().size());
        }
        assertTrue(Files.exists(cache));
        assertFalse(Files.list(root.resolve(".vimgfs")).anyMatch(p -> p.getFileName().toString().endsWith(".tmp")),
                "no temporary file left");
    }
}
