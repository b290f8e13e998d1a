package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static io.vimgfs.store.StoreFiles.blob;
import static io.vimgfs.store.StoreFiles.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who can read a store from its directory follows the mount's audience: root alone without
 * {@code allow_other}, a group with {@code -o group=NAME}, everyone otherwise; the working
 * directory is root's alone, blob files 0444 and staging files 0600 whatever the audience.
 */
class StorePermissionsTest {
    private static final String GROUP = "daemon"; // in every base system's /etc/group

    @TempDir
    Path dir;

    @Test
    void aNewStoreIsRootsAlone() throws Exception {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(List.of("rwx------", "rwx------", "rwx------"), pathModes(root));
            assertEquals("rwx------", mode(root.resolve(".vimgfs")));
            assertEquals("rwx------", mode(root.resolve(".vimgfs/staging")));
        }
    }

    @Test
    void eachAudienceGivesItsModesAndAPrivateMountNarrowsAgain() throws Exception {
        Path root = dir.resolve("store");
        open(root, new StoreAudience.Everyone());
        assertEquals(List.of("rwxr-xr-x", "rwxr-xr-x", "rwxr-xr-x"), pathModes(root));

        open(root, new StoreAudience.Group(GROUP));
        assertEquals(List.of("rwxr-x---", "rwxr-x---", "rwxr-x---"), pathModes(root));
        for (Path d : List.of(root, root.resolve("blobs"), root.resolve("blobs/sha256"))) {
            assertEquals(GROUP, Files.readAttributes(d, PosixFileAttributes.class).group().getName(), d::toString);
        }

        open(root, new StoreAudience.Private());
        assertEquals(List.of("rwx------", "rwx------", "rwx------"), pathModes(root));
        assertEquals("rwx------", mode(root.resolve(".vimgfs")));
    }

    @Test
    void aVerbWithoutAnAudienceLeavesAnExistingStoresModes() throws Exception {
        Path root = dir.resolve("store");
        open(root, new StoreAudience.Group(GROUP));
        ImageStore.open(root).close(); // vimgfs ls, gc, fsck …
        assertEquals(List.of("rwxr-x---", "rwxr-x---", "rwxr-x---"), pathModes(root));

        open(root, new StoreAudience.Private());
        ImageStore.open(root).close();
        assertEquals(List.of("rwx------", "rwx------", "rwx------"), pathModes(root), "a verb never widens");
    }

    @Test
    void blobFilesAre0444AndStagingFiles0600() throws Exception {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root, StoreOptions.defaults().withAudience(new StoreAudience.Everyone()))) {
            Upload upload = store.beginUpload();
            assertEquals("rw-------", mode(upload.file()), "an upload in progress is root's alone");
            upload.abandon();

            ImageInfo image = store.importFile(Files.write(dir.resolve("a.img"), bytes("a", MIB)),
                    Reference.parse("a:1"), n -> { });
            store.syncIndex();
            for (String hex : StoreFiles.blobsOfImage(root, "a:1")) {
                assertEquals("r--r--r--", mode(blob(root, hex)), hex);
            }
            assertEquals("r--r--r--", mode(blob(root, image.digest().hex())));
        }
    }

    @Test
    void anUnknownGroupIsRefusedByName() {
        Path root = dir.resolve("store");
        IOException e = assertThrows(IOException.class,
                () -> open(root, new StoreAudience.Group("no-such-group-vimgfs")));
        assertTrue(e.getMessage().contains("no group 'no-such-group-vimgfs'"), e.getMessage());
        assertTrue(Files.notExists(root), "nothing was made, so nothing is left readable");
    }

    private static void open(Path root, StoreAudience audience) throws IOException {
        ImageStore.open(root, StoreOptions.defaults().withAudience(audience)).close();
    }

    /** The modes of the store, blobs/ and blobs/sha256, the directories on the way to a blob. */
    private static List<String> pathModes(Path root) throws IOException {
        return List.of(mode(root), mode(root.resolve("blobs")), mode(root.resolve("blobs/sha256")));
    }

    private static String mode(Path file) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(file, LinkOption.NOFOLLOW_LINKS));
    }
}
