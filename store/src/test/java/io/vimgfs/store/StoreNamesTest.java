package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.blobNames;
import static io.vimgfs.store.StoreFiles.bytes;
import static io.vimgfs.store.StoreFiles.json;
import static io.vimgfs.store.StoreFiles.names;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The names the store gives (issue 8): a bare digest always means the digest, every entry of the
 * mount fits NAME_MAX, tags/ never needs one path to be a link and a directory, and names an
 * older version wrote against these rules stay, unable to stand in for a digest.
 */
class StoreNamesTest {
    @TempDir
    Path dir;
    private Path root;
    private ImageStore store;
    private ImageInfo b1;

    @BeforeEach
    void openStoreWithABaseAndItsOverlay() throws IOException {
        root = dir.resolve("store");
        store = ImageStore.open(root);
        b1 = importAs(write("b1.raw", bytes("b1", 1 << 20)), "b1:1");
        importAs(overlay("vm.qcow2", b1.digest().hex()), "myapp:1.0");
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    // ---- a bare digest means the digest --------------------------------------------------

    @Test
    void aTagSpellingTheBackingsDigestIsRefused() throws IOException {
        Path b2 = write("b2.raw", bytes("b2", 1 << 20));
        InvalidNameException e = assertThrows(InvalidNameException.class, () -> importAs(b2, "myapp:" + b1.digest().hex()));
        assertTrue(e.getMessage().contains("a tag cannot be 64 lowercase hex digits"), e.getMessage());
        assertEquals(Set.of("b1:1", "myapp:1.0"), names(store), "nothing was named");
        assertEquals(Optional.of(b1.digest()), store.resolve("myapp:1.0").backing());
    }

    @Test
    void aRepositoryComponentSpellingADigestIsRefused() throws IOException {
        Path b2 = write("b2.raw", bytes("b2", 1 << 20));
        InvalidNameException e = assertThrows(InvalidNameException.class,
                () -> importAs(b2, "myapp2/" + b1.digest().hex() + ":1"));
        assertTrue(e.getMessage().contains("a path component cannot be 64 lowercase hex digits"), e.getMessage());
        assertThrows(InvalidNameException.class, () -> store.tag("b1:1", new ImageName("myapp2/" + b1.digest().hex(), "1")),
                "a name built without parse() is checked too");
        assertThrows(InvalidNameException.class, () -> store.tag("b1:1", new ImageName("myapp", b1.digest().hex())));
        assertEquals(Set.of("b1:1", "myapp:1.0"), names(store));
    }

    @Test
    void hexOfAnotherLengthOrCaseIsStillAName() throws Exception {
        String hex = b1.digest().hex();
        importAs(write("b2.raw", bytes("b2", 1 << 20)), "myapp:" + hex.substring(1));
        store.tag("b1:1", ImageName.parse("myapp:" + hex.toUpperCase()));
        store.tag("b1:1", ImageName.parse("x/" + hex.substring(0, 63) + ":1"));
        assertEquals(5, store.names().size());
    }

    // ---- NAME_MAX ------------------------------------------------------------------------

    @Test
    void aByNameEntryOverNameMaxIsRefused() throws IOException {
        String component = "c".repeat(200);
        InvalidNameException e = assertThrows(InvalidNameException.class,
                () -> store.tag("b1:1", ImageName.parse("a/" + component + ":" + "t".repeat(55))));
        assertTrue(e.getMessage().contains("at most 255 bytes (NAME_MAX)"), e.getMessage());
        assertThrows(InvalidNameException.class, () -> store.tag("b1:1", new ImageName(component, "t".repeat(55))));

        store.tag("b1:1", ImageName.parse("a/" + component + ":" + "t".repeat(54))); // exactly 255 bytes
        store.tag("b1:1", ImageName.parse("c".repeat(255) + "/x:1")); // a long directory is fine
        assertEquals(4, store.names().size());
    }

    // ---- tags/a/b: a tag or a directory --------------------------------------------------

    @Test
    void aTagWhosePathIsARepositorysDirectoryIsRefused() throws IOException {
        store.tag("b1:1", ImageName.parse("a/b/c:1"));
        InvalidNameException e = assertThrows(InvalidNameException.class, () -> store.tag("b1:1", ImageName.parse("a:b")));
        assertTrue(e.getMessage().contains("tags/a/b") && e.getMessage().contains("repository 'a/b/c'"), e.getMessage());
        assertThrows(InvalidNameException.class, () -> store.tag("b1:1", ImageName.parse("a/b:c")));

        store.tag("b1:1", ImageName.parse("a:b-c"));   // a neighbour of a/b, not under it
        store.tag("b1:1", ImageName.parse("a/b:d"));   // tags/a/b/d
        InvalidNameException exact = assertThrows(InvalidNameException.class, () -> store.tag("b1:1", ImageName.parse("a:b")));
        assertTrue(exact.getMessage().contains("repository 'a/b'"), exact.getMessage());
    }

    @Test
    void aRepositoryWhoseDirectoryIsATagIsRefused() throws IOException {
        store.tag("b1:1", ImageName.parse("a:b"));
        Path b2 = write("b2.raw", bytes("b2", 1 << 20));
        InvalidNameException e = assertThrows(InvalidNameException.class, () -> importAs(b2, "a/b/c:1"));
        assertTrue(e.getMessage().contains("tags/a/b") && e.getMessage().contains("tag 'a:b'"), e.getMessage());
        assertThrows(InvalidNameException.class, () -> importAs(b2, "a/b"));

        store.tag("b1:1", ImageName.parse("x/y:z"));
        assertThrows(InvalidNameException.class, () -> store.tag("b1:1", ImageName.parse("x/y/z/w:1")),
                "a deeper component is checked as well");
        store.tag("b1:1", ImageName.parse("a/bb:1"));
        store.tag("b1:1", ImageName.parse("a/b.c:1"));
        assertEquals(Set.of("a/b.c:1", "a/bb:1", "a:b", "b1:1", "myapp:1.0", "x/y:z"), names(store));
    }

    @Test
    void aBatchCannotHoldBothOfAConflictingPair() throws IOException {
        List<ImageStore.ImportItem> items = List.of(
                new ImageStore.ImportItem(write("p.raw", bytes("p", 4096)), Reference.parse("p:q")),
                new ImageStore.ImportItem(write("r.raw", bytes("r", 4096)), Reference.parse("p/q:1")));
        Set<String> blobs = blobNames(root);
        assertThrows(InvalidNameException.class, () -> store.importAll(items, n -> { }));
        assertEquals(blobs, blobNames(root), "the refused batch left no blob behind");
        assertEquals(Set.of("b1:1", "myapp:1.0"), names(store));
    }

    // ---- names an older version wrote ----------------------------------------------------

    @Test
    void aStoreHoldingNamesThatSpellDigestsOpensKeepsThemAndTheDigestWins() throws IOException {
        String hex = b1.digest().hex();
        ImageInfo b2 = importAs(write("b2.raw", bytes("b2", 1 << 20)), "b2:1");
        store.close();
        renameInIndex(root, "b2:1", "myapp:" + hex, hex + ":latest", "sha256:" + hex, "a".repeat(250) + ":" + "t".repeat(20));
        store = ImageStore.open(root);

        assertEquals(Set.of("a".repeat(250) + ":" + "t".repeat(20), hex + ":latest", "b1:1", "myapp:" + hex, "myapp:1.0",
                "sha256:" + hex), names(store), "every name is kept");
        for (String digest : List.of(hex, "sha256:" + hex)) {
            assertEquals(b1.digest(), store.resolve(digest).digest(), digest + " is b1, not the name that spells it");
            assertEquals(Optional.empty(), store.nameIn(digest));
        }
        assertEquals(b2.digest(), store.resolve("myapp:" + hex).digest(), "an old name is reached with its tag");
        assertEquals(b2.digest(), store.resolve(hex + ":latest").digest());
        assertEquals(Optional.of(new ImageName(hex, "latest")), store.nameIn(hex + ":latest"));

        InvalidNameException moved = assertThrows(InvalidNameException.class,
                () -> store.tag("b1:1", ImageName.parseExisting("myapp:" + hex)));
        assertTrue(moved.getMessage().contains("64 lowercase hex"), moved.getMessage());
        store.tag("myapp:" + hex, ImageName.parse("myapp:2.0")); // an old name as a source is fine
        store.untag(ImageName.parseExisting(hex + ":latest"));

        store.close();
        store = ImageStore.open(root);
        assertEquals(Set.of("a".repeat(250) + ":" + "t".repeat(20), "b1:1", "myapp:" + hex, "myapp:1.0", "myapp:2.0",
                "sha256:" + hex), names(store), "commits keep the old names they do not touch");
    }

    /** Gives the image named {@code from} the names {@code to} instead, as an older version could have. */
    static void renameInIndex(Path root, String from, String... to) throws IOException {
        ObjectNode index = (ObjectNode) json(root.resolve("index.json"));
        com.fasterxml.jackson.databind.node.ArrayNode manifests = (com.fasterxml.jackson.databind.node.ArrayNode) index.path("manifests");
        JsonNode original = null;
        for (int i = 0; i < manifests.size(); i++) {
            if (manifests.get(i).path("annotations").path(OciLayout.REF_NAME).asText().equals(from)) {
                original = manifests.remove(i);
                break;
            }
        }
        for (String name : to) {
            ObjectNode copy = original.deepCopy();
            ((ObjectNode) copy.path("annotations")).put(OciLayout.REF_NAME, name);
            manifests.add(copy);
        }
        Files.write(root.resolve("index.json"), new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsBytes(index));
    }

    // ---- helpers -------------------------------------------------------------------------

    private ImageInfo importAs(Path file, String reference) throws IOException {
        return store.importFile(file, Reference.parse(reference), n -> { });
    }

    private Path write(String name, byte[] content) throws IOException {
        return Files.write(dir.resolve(name), content);
    }

    private Path overlay(String name, String backing) {
        Path file = dir.resolve(name);
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", backing, "-F", "raw", "-u", file, "64M");
        return file;
    }
}
