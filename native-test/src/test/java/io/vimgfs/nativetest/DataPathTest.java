package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The data path of issue 9: names resolve to the store's blob files, so a reader's disk never
 * depends on the daemon — through kill -9, a systemd-style restart, and removal of the last
 * name — and no one, root included, can change a stored image.
 */
class DataPathTest {
    /**
     * How long SIGTERM may take to end the daemon. The README promises "about 5 s" (its lazy
     * unmount and grace period); a JVM's exit on a loaded 2-core machine adds seconds to that.
     */
    private static final Duration EXIT_LIMIT = Duration.ofSeconds(20);
    /** The mount deletes a closed image's blob within a few seconds (its collector runs every 2 s). */
    private static final Duration GC_LIMIT = Duration.ofSeconds(10);

    /**
     * A reader that opens a path, reads its first half, says READY, waits for a line on stdin,
     * then (after an optional pause) fstats, preads the rest, maps the whole file and prints
     * "size sha256-of-pread sha256-of-mmap".
     */
    private static final String READER = String.join("\n",
            "import hashlib, mmap, os, sys, time",
            "fd = os.open(sys.argv[1], os.O_RDONLY)",
            "size = os.fstat(fd).st_size",
            "first = os.pread(fd, size // 2, 0)",
            "print('READY', flush=True)",
            "sys.stdin.readline()",
            "time.sleep(float(sys.argv[2]))",
            "st = os.fstat(fd)",
            "rest = b''",
            "while len(first) + len(rest) < st.st_size:",
            "    chunk = os.pread(fd, 1 << 20, len(first) + len(rest))",
            "    if not chunk: break",
            "    rest += chunk",
            "mapped = mmap.mmap(fd, st.st_size, prot=mmap.PROT_READ)",
            "print(st.st_size, hashlib.sha256(first + rest).hexdigest(), hashlib.sha256(mapped[:]).hexdigest(), flush=True)");

    @TempDir
    Path dir;

    @Test
    void namesAreLinksToTheBlobAndLsStatAndGetfattrShowIt() {
        Path source = Fixtures.small(dir, "img.raw", 300_000, 91);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/cirros:0.6.2")).ok();
            Path blob = m.store.toAbsolutePath().normalize().resolve("blobs/sha256/" + hex);

            assertAll(
                    () -> assertEquals(blob.toString(), Shell.run("readlink", m.at("by-digest/sha256/" + hex)).ok().out().strip(),
                            "by-digest/sha256/<hex> links to the blob, by absolute path"),
                    () -> assertEquals("../../by-digest/sha256/" + hex, Shell.run("readlink", m.at("tags/cirros/0.6.2")).ok().out().strip(),
                            "ls -l tags/cirros still shows the digest"),
                    () -> assertEquals(blob.toString(), Shell.run("readlink", "-f", m.at("tags/cirros/0.6.2")).ok().out().strip()),
                    () -> assertEquals("regular file 300000", Shell.run("stat", "-L", "-c", "%F %s", m.at("tags/cirros/0.6.2")).ok().out().strip()),
                    () -> assertEquals(hex, Shell.sha256(m.path("tags/cirros/0.6.2"))),
                    () -> assertEquals("raw", getfattr(m.at("tags/cirros/0.6.2"), "user.vimgfs.format"),
                            "getfattr follows the links to the blob's attributes"),
                    () -> assertEquals("sha256:" + hex, getfattr(m.at("by-name/cirros:0.6.2"), "user.vimgfs.digest")),
                    () -> assertEquals("700", Shell.run("stat", "-c", "%a", m.store.toString()).ok().out().strip(),
                            "without allow_other the store is root's alone"),
                    () -> assertEquals("600", Shell.run("stat", "-c", "%a", m.store.resolve(".vimgfs/mount.log").toString()).ok().out().strip(),
                            "the log is not readable by others"),
                    () -> assertEquals(Shell.run("df", "--output=itotal", m.store.toString()).ok().out(),
                            Shell.run("df", "--output=itotal", m.mountpoint.toString()).ok().out(),
                            "df -i reports the store filesystem's inodes"),
                    () -> assertTrue(Long.parseLong(Shell.run("df", "--output=iavail", m.mountpoint.toString()).ok().out()
                            .lines().skip(1).findFirst().orElse("0").strip()) > 0, "and free inodes (df -i is not 100%)"));
        }
    }

    @Test
    void aReaderKeepsReadingEveryByteAfterTheDaemonIsKilled() throws Exception {
        Path source = Fixtures.random(64);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/vm:1")).ok();
            Process reader = startReader(m.at("tags/vm/1"), 0);
            try {
                awaitLine(reader, "READY");
                long daemon = m.daemonPid();
                Shell.run("kill", "-KILL", Long.toString(daemon)).ok();
                // kill(1) returns before the JVM's threads are torn down and /dev/fuse is closed:
                // until then the daemon may still answer, so wait for it to be gone
                Eventually.within(EXIT_LIMIT, "the killed daemon is gone", () -> !alive(daemon));
                Shell.sh("sync; echo 3 > /proc/sys/vm/drop_caches").ok();
                assertNotEquals(0, Shell.run("ls", m.at("tags")).exit(), "the mount is dead: new lookups fail");

                String[] result = finishReader(reader);

                assertEquals(List.of(Long.toString(64 << 20), hex, hex), List.of(result),
                        "every remaining byte, read and mapped after the daemon died, has the image's digest");
            } finally {
                reader.destroyForcibly();
            }
            m.unmount();
            m.start();
            assertEquals(hex, Shell.sha256(m.path("tags/vm/1")), "a new mount serves the image again");
        }
    }

    @Test
    void anOpenImageStaysFullyUsableAfterItsLastNameIsRemoved() throws Exception {
        Path source = Fixtures.small(dir, "img.raw", 3_000_000, 92);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/gone:1")).ok();
            Process reader = startReader(m.at("tags/gone/1"), 2.0); // sleeps past the 1 s attribute timeout
            try {
                awaitLine(reader, "READY");
                Shell.run("rm", m.at("tags/gone/1")).ok();
                assertFalse(m.exists("tags/gone/1"), "the name is gone");
                assertTrue(m.exists("by-digest/sha256/" + hex), "open by a reader, the image stays, nameless (issue 11)");

                String[] result = finishReader(reader);

                assertEquals(List.of("3000000", hex, hex), List.of(result), "fstat, pread and mmap 2 s after removal");
            } finally {
                reader.destroyForcibly();
            }
            assertEquals(0, Shell.vimgfs(m.store, "gc").exit());
            // gc or, when its /proc scan came first, the mount's own collector (every 2 s) deletes it
            Eventually.within(GC_LIMIT, "once closed, gc deletes the blob", () -> !Files.exists(m.blob(hex)));
        }
    }

    @Test
    void aRestartUnderARunningQemuIoLosesNothing() throws Exception {
        Path pattern = dir.resolve("pattern.raw");
        Shell.run("qemu-img", "create", "-q", "-f", "raw", pattern.toString(), "8M").ok();
        Shell.run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 8M", pattern.toString()).ok();
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", pattern.toString(), m.at("incoming/base:1")).ok();
            Process qemuIo = new ProcessBuilder("qemu-io", "-r", "-f", "raw", m.at("tags/base/1"))
                    .redirectErrorStream(true).start();
            try (Writer commands = new OutputStreamWriter(qemuIo.getOutputStream(), StandardCharsets.UTF_8);
                 BufferedReader out = new BufferedReader(new InputStreamReader(qemuIo.getInputStream(), StandardCharsets.UTF_8))) {
                command(commands, "read -P 0x5a 0 4M");
                awaitLine(out, "read 4194304/4194304 bytes");

                // systemctl restart: SIGTERM, kill after a timeout, mount again at once
                long pid = m.daemonPid();
                Shell.run("kill", "-TERM", Long.toString(pid)).ok();
                long deadline = System.nanoTime() + EXIT_LIMIT.toNanos();
                while (alive(pid) && System.nanoTime() < deadline) {
                    MountedStore.sleep(50);
                }
                boolean exitedByItself = !alive(pid);
                Shell.run("kill", "-KILL", Long.toString(pid));
                assertTrue(exitedByItself, "SIGTERM ends the daemon within " + EXIT_LIMIT + " although qemu-io has an image open");
                m.start();

                Shell.sh("sync; echo 3 > /proc/sys/vm/drop_caches").ok();
                command(commands, "read -P 0x5a 4M 4M");
                String rest = awaitLine(out, "read 4194304/4194304 bytes");
                command(commands, "quit");
                commands.close();
                assertFalse(rest.contains("Pattern verification failed") || rest.contains("error"), rest);
                assertEquals(0, qemuIo.waitFor(30, TimeUnit.SECONDS) ? qemuIo.exitValue() : -1, "qemu-io ends cleanly");
                assertEquals(Shell.sha256(pattern), Shell.sha256(m.path("tags/base/1")), "the new mount serves the image");
            } finally {
                qemuIo.destroyForcibly();
            }
        }
    }

    @Test
    void rootCannotChangeAStoredImageThroughAnyPath() {
        Path source = Fixtures.small(dir, "img.raw", 1 << 20, 93);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/gold:1")).ok();
            String blob = m.blob(hex).toString();
            List<String> attempts = List.of(
                    "echo x >> " + m.at("tags/gold/1"),
                    "echo x >> " + m.at("by-digest/sha256/" + hex),
                    "echo x > " + blob,
                    "echo x >> " + blob,
                    "truncate -s 0 " + blob,
                    "dd if=/dev/zero of=" + blob + " bs=512 count=1 conv=notrunc status=none",
                    "qemu-io -f raw -c 'write -P 0 0 512' " + m.at("tags/gold/1"),
                    "qemu-io -f raw -c 'write -P 0 0 512' " + blob,
                    "mv " + blob + " " + blob + ".moved",
                    "rm -f " + blob,
                    "chmod 0666 " + blob);
            List<String> succeeded = new ArrayList<>();
            for (String attempt : attempts) {
                if (Shell.sh(attempt).exit() == 0) {
                    succeeded.add(attempt);
                }
            }
            assertEquals(List.of(), succeeded, "these changed a stored image as root");
            assertEquals(hex, Shell.sha256(m.blob(hex)), "the blob's bytes are unchanged");
            assertEquals(hex, Shell.sha256(m.path("tags/gold/1")));
            assertEquals(0, Shell.vimgfs(m.store, "fsck").exit(), "fsck is clean");
        }
    }

    @Test
    void qemuImgMapSeesTheHolesOfASparseRawImage() {
        Path sparse = dir.resolve("sparse.raw");
        Shell.run("truncate", "-s", "64M", sparse.toString()).ok();
        Shell.sh("dd if=/dev/urandom of=" + sparse + " bs=1M count=1 seek=8 conv=notrunc status=none").ok();
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", "--sparse=always", sparse.toString(), m.at("incoming/sparse:1")).ok();

            String map = Shell.run("qemu-img", "map", "-f", "raw", "--output=json", m.at("tags/sparse/1")).ok().out();

            assertTrue(map.contains("\"data\": false"), "qemu-img map sees unallocated ranges: " + map);
            assertTrue(map.contains("\"start\": 8388608, \"length\": 1048576") && map.contains("\"data\": true"),
                    "and the one allocated MiB at 8 MiB: " + map);
        }
    }

    private static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    private static String getfattr(String path, String name) {
        return Shell.run("getfattr", "--only-values", "-n", name, path).ok().out().strip();
    }

    static Process startReader(String path, double pauseSeconds) throws IOException {
        return new ProcessBuilder("python3", "-c", READER, path, Double.toString(pauseSeconds)).redirectErrorStream(true).start();
    }

    static String[] finishReader(Process reader) throws IOException, InterruptedException {
        reader.getOutputStream().write('\n');
        reader.getOutputStream().flush();
        String line = new BufferedReader(new InputStreamReader(reader.getInputStream(), StandardCharsets.UTF_8)).readLine();
        assertTrue(reader.waitFor(60, TimeUnit.SECONDS), "the reader finished");
        assertEquals(0, reader.exitValue(), "the reader's last line: " + line);
        return line.split(" ");
    }

    static void awaitLine(Process process, String wanted) throws IOException {
        BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        String line = out.readLine();
        assertEquals(wanted, line, "the reader started");
    }

    /** Reads output until a line containing {@code wanted}; returns everything read. */
    private static String awaitLine(BufferedReader out, String wanted) throws IOException {
        StringBuilder seen = new StringBuilder();
        for (String line = out.readLine(); line != null; line = out.readLine()) {
            seen.append(line).append('\n');
            if (line.contains(wanted)) {
                return seen.toString();
            }
        }
        throw new AssertionError("no line with '" + wanted + "' in:\n" + seen);
    }

    private static void command(Writer in, String line) throws IOException {
        in.write(line + "\n");
        in.flush();
    }
}
