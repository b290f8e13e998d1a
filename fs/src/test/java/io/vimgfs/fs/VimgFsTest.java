package io.vimgfs.fs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Clock;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The filesystem object without a mount: each test replays what a shell session would do
 * (written as the commands in comments) and checks what the user would see. Most run with
 * {@code -o data=fuse}, where the daemon serves image bytes; the link mode (the default) has
 * its own tests at the end.
 */
class VimgFsTest {
    private static final int O_RDONLY = 0;
    private static final int O_WRONLY = 1;

    @TempDir
    Path dir;
    ImageStore store;
    VimgFs fs;

    @BeforeEach
    void open() throws IOException {
        store = ImageStore.open(dir.resolve("store"));
        fs = new VimgFs(store, Clock.systemUTC(), DataMode.FUSE);
    }

    @AfterEach
    void close() throws IOException {
        fs.close();
        store.close();
    }

    /** cp SOURCE incoming/NAME: create, sequential writes, close (flush + release). */
    private void cp(byte[] content, String name) throws Exception {
        long handle = fs.create("/incoming/" + name).handle();
        writeAll(handle, content, 0);
        try {
            fs.flush(handle);
        } finally {
            fs.release(handle);
        }
    }

    private void writeAll(long handle, byte[] content, long offset) throws Exception {
        int chunk = 128 * 1024;
        for (int at = 0; at < content.length; at += chunk) {
            int length = Math.min(chunk, content.length - at);
            assertEquals(length, fs.write(handle, ByteBuffer.wrap(content, at, length), offset + at));
        }
    }

    private byte[] readAll(String path) throws Exception {
        long size = fs.getattr(path).size();
        long handle = fs.open(path, O_RDONLY).handle();
        try {
            ByteBuffer buffer = ByteBuffer.allocateDirect((int) size);
            assertEquals(size, fs.read(handle, buffer, 0));
            byte[] bytes = new byte[(int) size];
            buffer.flip().get(bytes);
            return bytes;
        } finally {
            fs.release(handle);
        }
    }

    private static byte[] randomBytes(int size, long seed) {
        byte[] bytes = new byte[size];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    /** The errno the FUSE adapter would answer for the action's failure. */
    private static Errno errno(ThrowingRunnable action) {
        return Errors.errnoOf(assertThrows(Exception.class, action::run));
    }

    private interface ThrowingRunnable {
        void run() throws Exception;
    }

    private long stagingFiles() throws IOException {
        try (Stream<Path> files = Files.list(dir.resolve("store/.vimgfs/staging"))) {
            return files.count();
        }
    }

    @Test
    void rootHasExactlyTheFourDirectories() throws Exception {
        // ls /mnt/images
        assertEquals(List.of("by-digest", "by-name", "incoming", "tags"), fs.readdir("/"));
        assertEquals(Attr.Kind.DIRECTORY, fs.getattr("/").kind());
        assertEquals(0755, fs.getattr("/incoming").permissions());
    }

    @Test
    void aPlacedImageAppearsUnderEveryView() throws Exception {
        // cp disk incoming/example.com/os/fedora:40 (after mkdir -p)
        byte[] content = randomBytes(300_000, 1);
        fs.mkdir("/incoming/example.com");
        fs.mkdir("/incoming/example.com/os");
        cp(content, "example.com/os/fedora:40");
        String hex = sha256(content);

        // ls by-digest/sha256; stat; sha256sum
        assertEquals(List.of(hex), fs.readdir("/by-digest/sha256"));
        Attr file = fs.getattr("/by-digest/sha256/" + hex);
        assertEquals(Attr.Kind.FILE, file.kind());
        assertEquals(0444, file.permissions());
        assertEquals(content.length, file.size());
        assertEquals(1, file.links());
        assertArrayEquals(content, readAll("/by-digest/sha256/" + hex));

        // readlink by-name/example.com/os/fedora:40 and tags/example.com/os/fedora/40
        assertEquals("../../../by-digest/sha256/" + hex, fs.readlink("/by-name/example.com/os/fedora:40"));
        assertEquals("../../../../by-digest/sha256/" + hex, fs.readlink("/tags/example.com/os/fedora/40"));
        assertEquals(Attr.Kind.SYMLINK, fs.getattr("/tags/example.com/os/fedora/40").kind());
        assertEquals(List.of("40"), fs.readdir("/tags/example.com/os/fedora"));
        // the staging file is gone and incoming/ shows only the directories
        assertEquals(0, stagingFiles());
        assertEquals(List.of("os"), fs.readdir("/incoming/example.com"));
    }

    @Test
    void inodesComeFromTheDigestAndSurviveANewFilesystemObject() throws Exception {
        cp(randomBytes(1000, 2), "a:1");
        String hex = fs.readdir("/by-digest/sha256").get(0);
        long inode = fs.getattr("/by-digest/sha256/" + hex).inode();
        long linkInode = fs.getattr("/tags/a/1").inode();
        VimgFs again = new VimgFs(store, Clock.systemUTC(), DataMode.FUSE);
        assertEquals(inode, again.getattr("/by-digest/sha256/" + hex).inode());
        assertEquals(linkInode, again.getattr("/tags/a/1").inode());
        assertFalse(inode == linkInode);
    }

    @Test
    void aBareDigestResolvesInEveryNameDirectoryWithoutBeingListed() throws Exception {
        cp(randomBytes(1000, 3), "cirros:0.6.2");
        String hex = fs.readdir("/by-digest/sha256").get(0);
        // QEMU resolves a backing name "<hex>" next to tags/cirros/0.6.2
        assertEquals("../../by-digest/sha256/" + hex, fs.readlink("/tags/cirros/" + hex));
        assertEquals("../by-digest/sha256/" + hex, fs.readlink("/by-name/" + hex));
        assertFalse(fs.readdir("/tags/cirros").contains(hex));
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr("/tags/cirros/" + "0".repeat(64))));
        assertEquals(Errno.EPERM, errno(() -> fs.unlink("/tags/cirros/" + hex)));
    }

    @Test
    void aRepositoryWhoseDirectoryUnderTagsIsATagIsRefused() throws Exception {
        cp(randomBytes(100, 4), "a:b");
        fs.mkdir("/incoming/a");
        long handle = fs.create("/incoming/a/b:c").handle();
        writeAll(handle, randomBytes(100, 5), 0);
        assertEquals(Errno.EINVAL, errno(() -> fs.flush(handle)), "tags/a/b cannot be the tag a:b and a directory");
        fs.release(handle);
        assertEquals(Attr.Kind.SYMLINK, fs.getattr("/tags/a/b").kind());
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr("/by-name/a/b:c")));
    }

    @Test
    void aListingListedAgainShowsEveryNameChangeSince() throws Exception {
        cp(randomBytes(100, 22), "a:1");
        assertEquals(List.of("1"), fs.readdir("/tags/a"));
        assertEquals(List.of("1"), fs.readdir("/tags/a"), "listed again, unchanged");
        store.tag("a:1", ImageName.parse("a:2"));
        assertEquals(List.of("1", "2"), fs.readdir("/tags/a"));
        assertEquals(List.of("a:1", "a:2"), fs.readdir("/by-name"));
        fs.unlink("/tags/a/1");
        assertEquals(List.of("2"), fs.readdir("/tags/a"));
    }

    @Test
    void neighbouringRepositoriesAndRegistryHostsListWhereTheyBelong() throws Exception {
        cp(randomBytes(100, 21), "a:1");
        store.tag("a:1", ImageName.parse("a-b:1"));
        store.tag("a:1", ImageName.parse("a/b:1"));
        store.tag("a:1", ImageName.parse("localhost:5000/x:1"));
        assertEquals(List.of("a", "a-b", "localhost:5000"), fs.readdir("/tags"));
        assertEquals(List.of("1", "b"), fs.readdir("/tags/a"));
        assertEquals(List.of("a", "a-b:1", "a:1", "localhost:5000"), fs.readdir("/by-name"));
        assertEquals(List.of("b:1"), fs.readdir("/by-name/a"));
        assertEquals(Attr.Kind.DIRECTORY, fs.getattr("/by-name/localhost:5000").kind());
        assertEquals(List.of("x:1"), fs.readdir("/by-name/localhost:5000"));
        assertEquals(Attr.Kind.SYMLINK, fs.getattr("/by-name/localhost:5000/x:1").kind());
        assertEquals(Attr.Kind.SYMLINK, fs.getattr("/tags/localhost:5000/x/1").kind());
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr("/tags/a-b/2")));
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr("/tags/nothing")));
    }

    @Test
    void xattrsDescribeTheImage() throws Exception {
        byte[] content = randomBytes(5000, 6);
        cp(content, "cirros:0.6.2");
        store.tag("cirros:0.6.2", ImageName.parse("cirros:latest"));
        String path = "/by-digest/sha256/" + sha256(content);
        assertEquals("sha256:" + sha256(content), new String(fs.getxattr(path, "user.vimgfs.digest"), StandardCharsets.UTF_8));
        assertEquals("raw", new String(fs.getxattr(path, "user.vimgfs.format"), StandardCharsets.UTF_8));
        assertEquals("5000", new String(fs.getxattr(path, "user.vimgfs.virtual_size"), StandardCharsets.UTF_8));
        assertEquals("cirros:0.6.2,cirros:latest", new String(fs.getxattr(path, "user.vimgfs.names"), StandardCharsets.UTF_8));
        assertEquals(List.of("user.vimgfs.digest", "user.vimgfs.format", "user.vimgfs.virtual_size", "user.vimgfs.names"),
                fs.listxattr(path));
        assertEquals(Errno.ENODATA, errno(() -> fs.getxattr(path, "security.selinux")));
        assertEquals(Errno.ENODATA, errno(() -> fs.getxattr(path, "user.vimgfs.backing")));
        assertEquals(List.of(), fs.listxattr("/tags"));
    }

    @Test
    void anInvalidNameIsRefusedAtCreate() {
        // cp x incoming/BAD ; cp x incoming/a..b
        assertEquals(Errno.EINVAL, errno(() -> fs.create("/incoming/BAD")));
        assertEquals(Errno.EINVAL, errno(() -> fs.create("/incoming/a..b")));
        assertEquals(Errno.EINVAL, errno(() -> fs.mkdir("/incoming/UPPER")));
        assertEquals(Errno.ENOENT, errno(() -> fs.create("/incoming/missing/dir:1")));
    }

    @Test
    void writesOutsideIncomingAreReadOnly() throws Exception {
        cp(randomBytes(100, 7), "a:1");
        String file = "/by-digest/sha256/" + fs.readdir("/by-digest/sha256").get(0);
        assertEquals(Errno.EROFS, errno(() -> fs.create("/by-digest/sha256/x")));
        assertEquals(Errno.EROFS, errno(() -> fs.create("/tags/a/2")));
        assertEquals(Errno.EROFS, errno(() -> fs.open(file, O_WRONLY)));
        assertEquals(Errno.EROFS, errno(() -> fs.truncate(file, 0)));
        assertEquals(Errno.EROFS, errno(() -> fs.mkdir("/tags/new")));
        assertEquals(Errno.EROFS, errno(() -> fs.rename("/tags/a/1", "/tags/a/2")));
        assertEquals(Errno.EROFS, errno(() -> fs.setAttributes(file))); // chmod, chown, touch
        assertEquals(Errno.EXDEV, errno(() -> fs.rename("/tags/a/1", "/incoming/a:2")));
    }

    @Test
    void onlyRegularFilesCanBeMade() {
        // mkfifo incoming/p ; mknod tags/d b 8 0
        assertEquals(Errno.EPERM, errno(() -> fs.mknod("/incoming/p")));
        assertEquals(Errno.EROFS, errno(() -> fs.mknod("/tags/d")));
        // ln -s x incoming/l ; ln incoming/a:1 incoming/b:1
        assertEquals(Errno.EROFS, errno(() -> fs.symlink("/incoming/l")));
        assertEquals(Errno.EROFS, errno(() -> fs.link("/incoming/b:1")));
    }

    @Test
    void anUploadCannotBePreallocatedAndNothingHasHolesPunched() throws Exception {
        // virsh vol-create-as (posix_fallocate) on incoming/vol:1, then removes it
        long upload = fs.create("/incoming/vol:1").handle();
        assertEquals(Errno.EPERM, errno(() -> fs.fallocate(upload, 0)), "EOPNOTSUPP would make glibc write zeros");
        // cp --sparse=always punches holes (PUNCH_HOLE | KEEP_SIZE) and writes zeros when refused
        assertEquals(Errno.EOPNOTSUPP, errno(() -> fs.fallocate(upload, 3)));
        fs.unlink("/incoming/vol:1");
        fs.release(upload);
        cp(randomBytes(100, 23), "a:1");
        long image = fs.open("/by-digest/sha256/" + fs.readdir("/by-digest/sha256").get(0), O_RDONLY).handle();
        assertEquals(Errno.EOPNOTSUPP, errno(() -> fs.fallocate(image, 0)));
        fs.release(image);
        assertEquals(Errno.EBADF, errno(() -> fs.fallocate(image, 0)));
    }

    @Test
    void attributesAreReadOnlyWhereverStatAnswers() throws Exception {
        cp(randomBytes(100, 24), "a:1");
        String image = "/by-digest/sha256/" + fs.readdir("/by-digest/sha256").get(0);
        // setfattr -n user.note -v x …
        assertEquals(Errno.EROFS, errno(() -> fs.setxattr(image)));
        assertEquals(Errno.EROFS, errno(() -> fs.setxattr("/incoming")));
        assertEquals(Errno.ENOENT, errno(() -> fs.setxattr("/tags/nothing")));
        // an open image whose last name is gone still stats, so it is still read-only rather than absent
        long handle = fs.open(image, O_RDONLY).handle();
        fs.unlink(image);
        assertEquals(Errno.EROFS, errno(() -> fs.setxattr(image)));
        fs.release(handle);
        assertEquals(Errno.ENOENT, errno(() -> fs.setxattr(image)));
    }

    @Test
    void flushPlacesOnceEvenWhenCalledForEveryDupedDescriptor() throws Exception {
        byte[] content = randomBytes(10_000, 8);
        long handle = fs.create("/incoming/a:1").handle();
        writeAll(handle, content, 0);
        fs.flush(handle);
        fs.flush(handle); // the dup'd descriptor's close
        fs.release(handle);
        assertEquals(1, store.list().size());
        assertEquals(List.of(), fs.readdir("/incoming"));
    }

    @Test
    void outOfOrderWritesAndHolesHashRight() throws Exception {
        // cp --sparse=always: data, a hole, data, then ftruncate to the full length
        byte[] content = new byte[3 * 1024 * 1024];
        byte[] a = randomBytes(100_000, 9);
        byte[] b = randomBytes(100_000, 10);
        System.arraycopy(a, 0, content, 0, a.length);
        System.arraycopy(b, 0, content, 2 * 1024 * 1024, b.length);
        long handle = fs.create("/incoming/sparse:1").handle();
        writeAll(handle, b, 2 * 1024 * 1024); // out of order: the later part first
        writeAll(handle, a, 0);
        fs.ftruncate(handle, content.length);
        assertEquals(content.length, fs.fgetattr("/incoming/sparse:1", handle).size());
        fs.flush(handle);
        fs.release(handle);
        assertArrayEquals(content, readAll("/by-digest/sha256/" + sha256(content)));
    }

    @Test
    void placementErrorsReachClose() throws Exception {
        byte[] content = randomBytes(1000, 11);
        // a wrong pinned digest: EIO, nothing placed
        long pinned = fs.create("/incoming/a:1@sha256:" + "0".repeat(64)).handle();
        writeAll(pinned, content, 0);
        assertEquals(Errno.EIO, errno(() -> fs.flush(pinned)));
        assertEquals(Errno.EIO, errno(() -> fs.flush(pinned)));
        fs.release(pinned);
        // an empty file: EINVAL
        long empty = fs.create("/incoming/empty:1").handle();
        assertEquals(Errno.EINVAL, errno(() -> fs.flush(empty)));
        fs.release(empty);
        assertEquals(List.of(), store.list());
        assertEquals(List.of(), fs.readdir("/incoming"));
        assertEquals(0, stagingFiles());
        // the right pin places
        cp(content, "a:1@sha256:" + sha256(content));
        assertEquals(sha256(content), store.image(ImageName.parse("a:1")).orElseThrow().digest().hex());
    }

    @Test
    void ddAndShellRedirectionsCloseADupedDescriptorBeforeWriting() throws Exception {
        // dd of=incoming/dd:1 does open(O_CREAT|O_TRUNC) = 3; dup2(3, 1); close(3); write(1, …)…; close(1)
        byte[] content = randomBytes(50_000, 20);
        long handle = fs.create("/incoming/dd:1").handle();
        assertEquals(Errno.EINVAL, errno(() -> fs.flush(handle))); // dd ignores this close's result
        writeAll(handle, content, 0);
        fs.flush(handle);
        fs.release(handle);
        assertEquals(sha256(content), store.image(ImageName.parse("dd:1")).orElseThrow().digest().hex());
        // touch incoming/empty:1: the close says EINVAL and nothing is left behind
        long touched = fs.create("/incoming/empty:1").handle();
        assertEquals(Errno.EINVAL, errno(() -> fs.flush(touched)));
        fs.release(touched);
        assertEquals(List.of(), fs.readdir("/incoming"));
        assertEquals(0, stagingFiles());
    }

    @Test
    void aTruncatedQcow2IsRefusedWithEio() throws Exception {
        byte[] header = new byte[512];
        ByteBuffer b = ByteBuffer.wrap(header);
        b.putInt(0, 0x514649fb).putInt(4, 3).putInt(20, 16).putLong(24, 1L << 30)
                .putInt(36, 16).putLong(40, 1L << 20).putLong(48, 1L << 16).putInt(56, 1).putInt(100, 112);
        long handle = fs.create("/incoming/broken:1").handle();
        writeAll(handle, header, 0);
        assertEquals(Errno.EIO, errno(() -> fs.flush(handle)));
        fs.release(handle);
        assertTrue(store.list().isEmpty());
    }

    @Test
    void aReaderOfAnIncomingFileDoesNotPlaceIt() throws Exception {
        long writer = fs.create("/incoming/a:1").handle();
        writeAll(writer, randomBytes(1000, 12), 0);
        long reader = fs.open("/incoming/a:1", O_RDONLY).handle();
        fs.flush(reader);
        fs.release(reader);
        assertEquals(List.of("a:1"), fs.readdir("/incoming"));
        assertEquals(1000, fs.getattr("/incoming/a:1").size());
        fs.flush(writer);
        fs.release(writer);
        assertEquals(1, store.list().size());
    }

    @Test
    void rsyncWritesADotFileAndRenamesIt() throws Exception {
        byte[] content = randomBytes(20_000, 13);
        cp(content, ".cirros:0.6.2.XyZ12");
        assertEquals(List.of(".cirros:0.6.2.XyZ12"), fs.readdir("/incoming"));
        assertTrue(store.list().isEmpty());
        fs.setAttributes("/incoming/.cirros:0.6.2.XyZ12"); // rsync sets the time before the rename
        fs.rename("/incoming/.cirros:0.6.2.XyZ12", "/incoming/cirros:0.6.2");
        assertEquals(sha256(content), store.image(ImageName.parse("cirros:0.6.2")).orElseThrow().digest().hex());
        assertEquals(List.of(), fs.readdir("/incoming"));
        // a rename to an invalid name is refused and keeps the staging file
        cp(content, ".x");
        assertEquals(Errno.EINVAL, errno(() -> fs.rename("/incoming/.x", "/incoming/NO")));
        assertEquals(List.of(".x"), fs.readdir("/incoming"));
    }

    @Test
    void onlyUploadsMoveAndOnlyWithinIncoming() throws Exception {
        fs.mkdir("/incoming/dir");
        long handle = fs.create("/incoming/.a:1.tmp").handle();
        // mv incoming/dir incoming/other ; mv incoming/.a:1.tmp by-name/ ; mv incoming/nothing incoming/x
        assertEquals(Errno.EXDEV, errno(() -> fs.rename("/incoming/dir", "/incoming/other")));
        assertEquals(Errno.EXDEV, errno(() -> fs.rename("/incoming/.a:1.tmp", "/by-name/a:1")));
        assertEquals(Errno.ENOENT, errno(() -> fs.rename("/incoming/nothing", "/incoming/x:1")));
        // rm of the open upload: libfuse hides it, and the hidden name is no upload to move
        fs.rename("/incoming/.a:1.tmp", "/incoming/.fuse_hidden0000000200000001");
        assertEquals(Errno.ENOENT, errno(() -> fs.rename("/incoming/.fuse_hidden0000000200000001", "/incoming/a:1")));
        fs.release(handle);
        // mkdir incoming ; touch incoming (neither is a new entry under incoming/)
        assertEquals(Errno.EROFS, errno(() -> fs.mkdir("/incoming")));
        assertEquals(Errno.EROFS, errno(() -> fs.create("/incoming")));
    }

    @Test
    void rmOfAnUploadAbandonsIt() throws Exception {
        long handle = fs.create("/incoming/a:1").handle();
        writeAll(handle, randomBytes(1000, 14), 0);
        fs.unlink("/incoming/a:1");
        assertEquals(List.of(), fs.readdir("/incoming"));
        fs.flush(handle);
        fs.release(handle);
        assertTrue(store.list().isEmpty());
        assertEquals(0, stagingFiles());
    }

    @Test
    void twoUploadsToOneNameBothFinishAndTheLastToCloseWins() throws Exception {
        byte[] first = randomBytes(1000, 15);
        byte[] second = randomBytes(1000, 16);
        long a = fs.create("/incoming/a:1").handle();
        long b = fs.create("/incoming/a:1").handle();
        writeAll(a, first, 0);
        writeAll(b, second, 0);
        fs.flush(b);
        fs.release(b);
        fs.flush(a);
        fs.release(a);
        assertEquals(sha256(first), store.image(ImageName.parse("a:1")).orElseThrow().digest().hex());
        assertEquals(1, store.list().size()); // the second's image went with its only name
        assertEquals(0, stagingFiles());
    }

    private static final int O_TRUNC = 01000;

    private byte[] readNamed(String name) throws Exception {
        return readAll("/by-digest/sha256/" + store.image(ImageName.parse(name)).orElseThrow().digest().hex());
    }

    /** Every stored image's bytes hash to its digest (SPEC §2: a blob never differs from its name). */
    private void assertEveryBlobMatchesItsDigest() throws Exception {
        for (var image : store.list()) {
            assertEquals(image.digest().hex(), sha256(Files.readAllBytes(store.imagePath(image.digest()))),
                    "blob " + image.digest() + " holds other bytes than its digest says");
        }
    }

    @Test
    void aSharedDescriptorPlacesTheWholeFileAndLeavesNoPartialImage() throws Exception {
        // (cat p1; cat p2) > incoming/x:1: one open file; each cat's close is a flush
        byte[] p1 = randomBytes(300_000, 30);
        byte[] p2 = randomBytes(200_000, 31);
        long handle = fs.create("/incoming/x:1").handle();
        writeAll(handle, p1, 0);
        fs.flush(handle); // the first cat exits: p1 is placed
        assertEquals(sha256(p1), store.image(ImageName.parse("x:1")).orElseThrow().digest().hex());
        writeAll(handle, p2, p1.length); // the second cat writes through the same descriptor
        assertEquals(List.of("x:1"), fs.readdir("/incoming"), "written again, it shows in incoming/ again");
        assertEquals(p1.length + p2.length, fs.fgetattr("/incoming/x:1", handle).size());
        fs.flush(handle); // the second cat exits
        fs.flush(handle); // the shell closes its descriptor
        fs.release(handle);

        byte[] whole = new byte[p1.length + p2.length];
        System.arraycopy(p1, 0, whole, 0, p1.length);
        System.arraycopy(p2, 0, whole, p1.length, p2.length);
        assertArrayEquals(whole, readNamed("x:1"));
        assertEquals(List.of(sha256(whole)), fs.readdir("/by-digest/sha256"), "the partial image p1 is gone");
        assertEquals(List.of(), fs.readdir("/incoming"));
        assertEquals(0, stagingFiles());
        assertEveryBlobMatchesItsDigest();
    }

    @Test
    void aSharedDescriptorKeepsContentThatAnotherNameAlreadyHad() throws Exception {
        byte[] p1 = randomBytes(10_000, 32);
        byte[] p2 = randomBytes(10_000, 33);
        cp(p1, "other:1");
        long handle = fs.create("/incoming/x:1").handle();
        writeAll(handle, p1, 0);
        fs.flush(handle);
        writeAll(handle, p2, p1.length);
        fs.flush(handle);
        fs.release(handle);
        assertArrayEquals(p1, readNamed("other:1"), "content that had a name before keeps it");
        assertEquals(2, store.list().size());
    }

    @Test
    void aWholeFileRefusedAfterItsFirstPartWasPlacedLeavesNoPartUnderTheName() throws Exception {
        byte[] p1 = randomBytes(10_000, 34);
        long handle = fs.create("/incoming/x:1@sha256:" + sha256(p1)).handle(); // pinned to p1
        writeAll(handle, p1, 0);
        fs.flush(handle);
        writeAll(handle, randomBytes(10_000, 35), p1.length);
        assertEquals(Errno.EIO, errno(() -> fs.flush(handle))); // p1 + p2 does not match the pin
        fs.release(handle);
        assertEquals(List.of(), store.list(), "p1 alone must not stay under x:1");
        assertEquals(0, stagingFiles());
    }

    @Test
    void twoCpsWithTruncatingOpensOfOneNameEachPlaceTheirOwnBytes() throws Exception {
        // cp A incoming/x:1 & cp B incoming/x:1: the second open finds the first's file, with O_TRUNC
        byte[] a = randomBytes(400_000, 36);
        byte[] b = randomBytes(300_000, 37);
        long first = fs.create("/incoming/x:1").handle();
        writeAll(first, a, 0);
        long second = fs.open("/incoming/x:1", O_WRONLY | O_TRUNC).handle();
        writeAll(second, b, 0);
        assertEquals(a.length, fs.fgetattr("/incoming/x:1", first).size(), "the truncating open did not cut the first file");
        fs.flush(first);
        fs.release(first);
        fs.flush(second);
        fs.release(second);
        assertEquals(sha256(b), store.image(ImageName.parse("x:1")).orElseThrow().digest().hex(), "the last to close wins");
        assertEveryBlobMatchesItsDigest();
        assertEquals(0, stagingFiles());
    }

    @Test
    void writesRacingAPlacementNeverChangeAPlacedBlob() throws Exception {
        for (int round = 0; round < 20; round++) {
            long handle = fs.create("/incoming/race:" + round).handle();
            byte[] chunk = randomBytes(64 * 1024, 40 + round);
            writeAll(handle, chunk, 0);
            var stop = new java.util.concurrent.atomic.AtomicBoolean();
            Thread writer = new Thread(() -> {
                long at = chunk.length;
                try {
                    while (!stop.get() && at < 64L * chunk.length) {
                        fs.write(handle, ByteBuffer.wrap(chunk), at);
                        at += chunk.length;
                    }
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            writer.start();
            fs.flush(handle); // a dup'd descriptor closes while the other keeps writing
            stop.set(true);
            writer.join();
            fs.flush(handle);
            fs.release(handle);
            assertEveryBlobMatchesItsDigest();
            assertEquals(fs.getattr("/by-digest/sha256/" + store.image(ImageName.parse("race:" + round)).orElseThrow()
                    .digest().hex()).size() % chunk.length, 0);
        }
        assertEquals(20, store.list().size(), "one image per name: every intermediate placement is gone");
        assertEquals(0, stagingFiles());
    }


    @Test
    void untaggingTheLastNameRemovesTheImage() throws Exception {
        byte[] content = randomBytes(1000, 17);
        cp(content, "cirros:0.6.2");
        store.tag("cirros:0.6.2", ImageName.parse("cirros:latest"));
        fs.unlink("/tags/cirros/0.6.2");
        assertEquals(List.of("latest"), fs.readdir("/tags/cirros"));
        assertEquals(List.of(sha256(content)), fs.readdir("/by-digest/sha256"));
        fs.unlink("/by-name/cirros:latest");
        assertEquals(List.of(), fs.readdir("/by-digest/sha256"));
        assertEquals(List.of(), fs.readdir("/tags"));
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr("/tags/cirros")));
        fs.rmdir("/tags/cirros"); // rm -r: the directory already went with its names
        store.syncIndex(); // blobs go once the index on disk no longer names them (within about a second)
        assertFalse(Files.exists(dir.resolve("store/blobs/sha256/" + sha256(content))));
    }

    @Test
    void anOpenImageStaysReadableAfterRemovalIncludingTheFuseHiddenRename() throws Exception {
        byte[] content = randomBytes(2_000_000, 18);
        cp(content, "a:1");
        String path = "/by-digest/sha256/" + sha256(content);
        long handle = fs.open(path, O_RDONLY).handle();
        ByteBuffer half = ByteBuffer.allocate(1_000_000);
        assertEquals(1_000_000, fs.read(handle, half, 0));
        // rm of an open file: libfuse 2 renames it to .fuse_hidden… instead of unlinking
        String hidden = "/by-digest/sha256/.fuse_hidden0000000100000001";
        fs.rename(path, hidden);
        assertEquals(List.of(), fs.readdir("/by-digest/sha256"));
        assertTrue(store.list().isEmpty());
        assertEquals(content.length, fs.getattr(hidden).size());
        ByteBuffer rest = ByteBuffer.allocate(1_000_000);
        assertEquals(1_000_000, fs.read(handle, rest, 1_000_000));
        byte[] all = new byte[content.length];
        System.arraycopy(half.array(), 0, all, 0, 1_000_000);
        System.arraycopy(rest.array(), 0, all, 1_000_000, 1_000_000);
        assertArrayEquals(content, all);
        fs.release(handle);
        fs.unlink(hidden); // libfuse's unlink at the last release
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr(hidden)));
    }

    @Test
    void unknownHandlesAreEbadf() {
        assertEquals(Errno.EBADF, errno(() -> fs.read(999, ByteBuffer.allocate(1), 0)));
        assertEquals(Errno.EBADF, errno(() -> fs.release(999)));
    }

    @Test
    void changesByAnotherStoreObjectAppearAfterRefresh() throws Exception {
        Path source = dir.resolve("x.raw");
        Files.write(source, randomBytes(4096, 19));
        try (ImageStore other = ImageStore.open(dir.resolve("store"))) {
            other.importFile(source, Reference.parse("other:1"), n -> { });
        }
        assertTrue(store.refresh());
        assertEquals(List.of("other"), fs.readdir("/tags"));
        assertEquals(Digest.of(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(source))).hex(),
                fs.readdir("/by-digest/sha256").get(0));
    }

    @Test
    void fstatAndReadOfAnOpenImageWorkAfterItsLastNameIsRemovedByAnotherProcess() throws Exception {
        byte[] content = randomBytes(300_000, 20);
        cp(content, "gone:1");
        String path = "/by-digest/sha256/" + sha256(content);
        long handle = fs.open(path, O_RDONLY).handle();
        // vimgfs rm gone:1, from another shell: no .fuse_hidden rename reaches this mount
        try (ImageStore other = ImageStore.open(dir.resolve("store"))) {
            other.untag(io.vimgfs.store.ImageName.parse("gone:1"));
        }
        store.refresh();
        assertEquals(List.of(), fs.readdir("/by-digest/sha256"));
        // fstat(fd) and read(fd) still answer, from the handle; the kernel asks fstat without the
        // handle, which libfuse 2 turns into a getattr of the path the file was opened at
        Attr attributes = fs.fgetattr(path, handle);
        assertEquals(content.length, attributes.size());
        assertEquals(Attr.Kind.FILE, attributes.kind());
        assertEquals(content.length, fs.getattr(path).size());
        ByteBuffer all = ByteBuffer.allocate(content.length);
        assertEquals(content.length, fs.read(handle, all, 0));
        assertArrayEquals(content, all.array());
        fs.release(handle);
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr(path)), "closed: the path is gone");
    }

    @Test
    void anOpenUploadDoesNotAnswerAtItsPathOnceRemoved() throws Exception {
        // exec 3>incoming/a:1 ; rm incoming/a:1 ; stat incoming/a:1
        long handle = fs.create("/incoming/a:1").handle();
        writeAll(handle, randomBytes(1000, 22), 0);
        fs.unlink("/incoming/a:1");
        assertEquals(Errno.ENOENT, errno(() -> fs.getattr("/incoming/a:1")), "abandoned, not hidden");
        assertEquals(1000, fs.fgetattr("/incoming/a:1", handle).size());
        fs.release(handle);
    }

    @Test
    void byDefaultAnImageIsALinkToItsBlobAndNamesLinkToByDigest() throws Exception {
        VimgFs links = new VimgFs(store, Clock.systemUTC(), DataMode.LINK);
        byte[] content = randomBytes(100_000, 21);
        cp(content, "cirros:0.6.2");
        String hex = sha256(content);
        Path blob = dir.resolve("store").toAbsolutePath().normalize().resolve("blobs/sha256/" + hex);

        // ls -l by-digest/sha256: hex -> /STORE/blobs/sha256/hex
        Attr entry = links.getattr("/by-digest/sha256/" + hex);
        assertEquals(Attr.Kind.SYMLINK, entry.kind());
        assertEquals(blob.toString(), links.readlink("/by-digest/sha256/" + hex));
        assertEquals(blob.toString().length(), entry.size());
        assertArrayEquals(content, Files.readAllBytes(Path.of(links.readlink("/by-digest/sha256/" + hex))));
        // ls -l tags/cirros still shows the digest
        assertEquals("../../by-digest/sha256/" + hex, links.readlink("/tags/cirros/0.6.2"));
        // links carry no user.* attributes (Linux allows none on symlinks): getfattr follows them to
        // the blob; ENOSYS tells the kernel to stop asking (ls -l asks security.selinux of every entry)
        assertEquals(Errno.ENOSYS, errno(() -> links.listxattr("/by-digest/sha256/" + hex)));
        assertEquals(Errno.ENOSYS, errno(() -> links.getxattr("/tags/cirros/0.6.2", "security.selinux")));
        // the daemon never serves the bytes of a placed image
        assertEquals(Errno.EISDIR, errno(() -> links.open("/by-digest/sha256/" + hex, O_RDONLY)));

        // rm by-digest/sha256/hex removes the image with its names
        links.unlink("/by-digest/sha256/" + hex);
        assertEquals(List.of(), links.readdir("/tags"));
        store.syncIndex(); // blobs go once the index on disk no longer names them (within about a second)
        assertFalse(Files.exists(blob));
        links.close();
    }
}
