package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Adding images by writing into incoming/ with everyday tools, and what is refused (SPEC §4). */
class MountIncomingTest {
    private static final String EIO = "Input/output error";
    private static final String EINVAL = "Invalid argument";
    private static final String EROFS = "Read-only file system";

    @TempDir
    Path dir;

    @Test
    void cpOfASmallFilePlacesItUnderItsDigestAndNames() {
        Path source = Fixtures.small(dir, "cirros.img", 70_000, 11);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/cirros:0.6.2")).ok();

            assertPlaced(m, hex, "tags/cirros/0.6.2");
            assertEquals(List.of(hex), m.ls("by-digest/sha256"));
            assertEquals(List.of(), m.stagingFiles(), "no staging file is left once placed");
        }
    }

    @Test
    void cpOfASparse2GiBFilePlacesItWithItsDigestAndKeepsItSparse() {
        Path source = dir.resolve("sparse.raw");
        Shell.run("truncate", "-s", "2G", source.toString()).ok();
        for (long mib : new long[] {0, 1, 700, 1500, 2047}) {
            Shell.sh("echo 'bytes at " + mib + " MiB' | dd of='" + source + "' bs=1M seek=" + mib + " conv=notrunc status=none").ok();
        }
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/sparse:1")).ok();

            // The name is the digest the store computed: no need to read 2 GiB back through the mount.
            assertEquals(m.blobPath(hex), Shell.run("readlink", "-f", m.at("tags/sparse/1")).ok().out().strip());
            String[] stat = Shell.run("stat", "-L", "-c", "%s %b %B", m.at("by-digest/sha256/" + hex)).ok().out().strip().split(" ");
            assertEquals(2L << 30, Long.parseLong(stat[0]));
            assertTrue(Long.parseLong(stat[1]) * Long.parseLong(stat[2]) < 64 * Fixtures.MIB,
                    "st_blocks shows the real (sparse) allocation, not 2 GiB: " + String.join(" ", stat));
            assertEquals(List.of(), m.ls("incoming"));
            assertEquals(List.of(), m.stagingFiles(), "no staging file is left once placed");
        }
    }

    @Test
    void cpOfA1GiBFilePlacesItAndReadsBackTheSameBytes() {
        Path source = Fixtures.random(1024);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run(Duration.ofSeconds(300), java.util.Map.of(), // 1 GiB written, hashed and fsynced on a shared disk
                    List.of("cp", source.toString(), m.at("incoming/big:1"))).ok();

            assertEquals("1073741824", Shell.run("stat", "-L", "-c", "%s", m.at("by-digest/sha256/" + hex)).ok().out().strip());
            assertEquals(m.blobPath(hex), Shell.run("readlink", "-f", m.at("tags/big/1")).ok().out().strip());
            Shell.run("cmp", source.toString(), m.at("tags/big/1")).ok();
            assertEquals(List.of(), m.stagingFiles());
        }
    }

    @Test
    void rsyncCurlAndRenamingADotFilePlace() {
        Path source = Fixtures.small(dir, "img.raw", 90_000, 12);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("rsync", source.toString(), m.at("incoming/rsync:1")).ok();
            assertPlaced(m, hex, "tags/rsync/1");

            Shell.run("curl", "-sS", "file://" + source, "-o", m.at("incoming/curl:1")).ok();
            assertPlaced(m, hex, "tags/curl/1");

            Shell.run("cp", source.toString(), m.at("incoming/.upload")).ok();
            assertEquals("90000", Shell.run("stat", "-c", "%s", m.at("incoming/.upload")).ok().out().strip(),
                    "a dot-file stays in incoming/ with its size, unplaced");
            assertFalse(m.exists("tags/mv"));
            Shell.run("mv", m.at("incoming/.upload"), m.at("incoming/mv:1")).ok();
            assertPlaced(m, hex, "tags/mv/1");

            assertEquals(List.of(), m.ls("incoming"));
            assertEquals(List.of(hex), m.ls("by-digest/sha256"), "identical content is stored once");
            assertEquals(List.of(), m.stagingFiles());
        }
    }

    /**
     * dd and a shell redirection open the file, dup2 the descriptor onto stdout and close the
     * original before writing a byte: that first close is a FUSE flush of an empty file.
     */
    @Test
    void ddAndShellRedirectionPlace() {
        Path source = Fixtures.small(dir, "img.raw", 90_000, 13);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.Result dd = Shell.run("dd", "if=" + source, "of=" + m.at("incoming/dd:1"), "bs=1M", "status=none");
            Shell.Result redirect = Shell.sh("cat '" + source + "' > '" + m.at("incoming/redirect:1") + "'");

            assertAll(
                    () -> assertEquals(0, dd.exit(), "dd of=incoming/dd:1 fails: " + dd.err()),
                    () -> assertPlaced(m, hex, "tags/dd/1"),
                    () -> assertEquals(0, redirect.exit(), "cat > incoming/redirect:1 fails: " + redirect.err()),
                    () -> assertPlaced(m, hex, "tags/redirect/1"));
        }
    }

    @Test
    void refusedWritesFailWithTheErrnoOfTheSpecAndPlaceNothing() {
        Path source = Fixtures.small(dir, "img.raw", 80_000, 14);
        String hex = Fixtures.sha256(source);
        String wrong = "0".repeat(63) + "1";
        Path empty = dir.resolve("empty.raw");
        try {
            Files.createFile(empty);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        try (MountedStore m = MountedStore.mount(dir)) {
            assertAll(
                    () -> assertFails(EIO, "cp", source.toString(), m.at("incoming/pinned:1@sha256:" + wrong)),
                    () -> assertFails(EINVAL, "cp", source.toString(), m.at("incoming/BAD")),
                    () -> assertFails(EINVAL, "cp", source.toString(), m.at("incoming/a..b")),
                    () -> assertFails(EINVAL, "cp", source.toString(), m.at("incoming/sha:1@sha512:" + "0".repeat(128))),
                    () -> assertFails(EINVAL, "cp", empty.toString(), m.at("incoming/empty:1")),
                    () -> assertFails(EROFS, "cp", source.toString(), m.at("new-file")),
                    () -> assertFails(EROFS, "cp", source.toString(), m.at("by-digest/sha256/x")),
                    () -> assertFails(EROFS, "cp", source.toString(), m.at("by-name/x:1")),
                    () -> assertFails(EROFS, "cp", source.toString(), m.at("tags/x")),
                    () -> assertFails(EROFS, "mkdir", m.at("by-name/example.com")));
            assertEquals(List.of(), m.ls("by-digest/sha256"), "nothing refused is placed");
            assertEquals(List.of(), m.ls("tags"));
            assertEquals(List.of(), m.ls("incoming"), "refused uploads do not linger in incoming/");

            Shell.run("cp", source.toString(), m.at("incoming/pinned:1@sha256:" + hex)).ok();
            assertPlaced(m, hex, "tags/pinned/1");
            String image = m.at("by-digest/sha256/" + hex);
            // the names lead to the store's immutable blob: writing it is refused by the store's filesystem
            String immutable = "Operation not permitted";
            assertAll("writing to a placed image",
                    () -> assertFails(immutable, "cp", source.toString(), image),
                    () -> assertFails(immutable, "truncate", "-s", "0", image),
                    () -> assertFails(immutable, "sh", "-c", "echo x >> " + m.at("tags/pinned/1")),
                    () -> assertFails(EROFS, "rmdir", m.at("incoming")),
                    () -> assertNotEnosys("touch", image),
                    () -> assertNotEnosys("touch", "-h", m.at("tags/pinned/1")),
                    () -> assertNotEnosys("chmod", "600", image),
                    () -> assertNotEnosys("chown", "nobody", image));
            assertEquals(hex, Shell.run("sha256sum", image).ok().out().substring(0, 64), "the image is unchanged");
            assertEquals(List.of(), m.stagingFiles());
            assertTrue(m.isMounted());
        }
    }

    /**
     * A writer killed mid-copy is closed by the kernel, which to the filesystem is an ordinary
     * close: the partial qcow2 is offered for placing and must be refused as truncated (SPEC §4, §6).
     * If the kill came after the last write the copy is complete and is placed; both are fine.
     */
    @Test
    void aSigkilledCpOfAQcow2PlacesNothingPartialAndLeavesNoStaging() throws Exception {
        Path source = Fixtures.randomQcow2(1024);
        long full = Files.size(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Path target = m.path("incoming/killed:1");
            Process cp = Shell.spawn("cp", source.toString(), target.toString());
            Eventually.within(Duration.ofSeconds(30), "cp wrote 128 MiB into incoming/", () -> sizeOf(target) >= 128 * Fixtures.MIB || !cp.isAlive());
            long written = sizeOf(target); // at least this much; the kernel's close may place or refuse it at once
            cp.destroyForcibly(); // SIGKILL
            // the killed cp's last close is a FUSE flush, which places or refuses what it wrote before cp is gone
            assertTrue(cp.waitFor(120, TimeUnit.SECONDS));

            Eventually.within(Duration.ofSeconds(60), "the killed upload leaves incoming/", () -> m.ls("incoming").isEmpty());
            boolean placed = m.exists("tags/killed/1");
            System.out.printf("cp killed after %d of %d bytes: %s%n", written, full, placed ? "placed (complete)" : "refused");
            if (placed) {
                assertEquals(Fixtures.sha256(source), Shell.run("readlink", m.at("tags/killed/1")).ok().out().strip()
                        .replaceFirst(".*/", ""), "only a complete copy may be placed");
            } else {
                assertTrue(written < full, "a complete copy (" + written + " bytes) was not placed");
                assertEquals(List.of(), m.ls("by-digest/sha256"), "a truncated qcow2 is not placed");
                assertTrue(m.log().contains("refused incoming/killed:1") && m.log().contains("truncated"),
                        "the log says the killed upload was refused as truncated:\n" + m.log());
            }

            m.unmount();
            m.start();
            assertEquals(List.of(), m.ls("incoming"));
            assertEquals(List.of(), m.stagingFiles(), "no staging file is left after unmount and remount");
            Shell.Result fsck = Shell.vimgfs(m.store, "fsck").ok();
            assertTrue(fsck.out().contains("clean"), fsck.out());
        }
    }

    private static long sizeOf(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            return -1;
        }
    }

    private static void assertPlaced(MountedStore m, String hex, String name) {
        assertEquals(hex + "  " + m.at(name), Shell.run("sha256sum", m.at(name)).ok().out().strip(), name + " holds the content");
        assertEquals(m.blobPath(hex), Shell.run("readlink", "-f", m.at(name)).ok().out().strip(),
                name + " leads to the image's blob in the store");
    }

    private static void assertFails(String error, String... command) {
        Shell.Result result = Shell.run(command);
        assertTrue(result.exit() != 0 && result.err().contains(error),
                String.join(" ", command) + " should fail with \"" + error + "\"; exit " + result.exit() + ", stderr: " + result.err());
    }

    /** chmod, chown and utimens on a read-only image fail, but with EROFS or EPERM, never ENOSYS. */
    private static void assertNotEnosys(String... command) {
        Shell.Result result = Shell.run(command);
        assertFalse(result.err().contains("Function not implemented"), String.join(" ", command) + ": " + result.err());
        assertTrue(result.exit() != 0 && (result.err().contains(EROFS) || result.err().contains("Operation not permitted")),
                String.join(" ", command) + " should fail with EROFS or EPERM: exit " + result.exit() + ", " + result.err());
    }
}
