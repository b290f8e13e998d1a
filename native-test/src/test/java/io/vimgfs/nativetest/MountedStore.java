package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;

/**
 * A real vimgfs mount of a fresh store, started with the command users run and always unmounted
 * on close, with a timeout, even when the test failed. Without a usable /dev/fuse the test fails
 * when VIMGFS_REQUIRE_FUSE=1 (CI) and is skipped otherwise.
 */
final class MountedStore implements AutoCloseable {
    final Path store;
    final Path mountpoint;

    private MountedStore(Path store, Path mountpoint) {
        this.store = store;
        this.mountpoint = mountpoint;
    }

    static MountedStore mount(Path dir, String... options) {
        return mount(dir.resolve("store"), dir.resolve("mnt"), options);
    }

    /** Mounts {@code store} (made when absent) at {@code mountpoint}, for a store that is not {@code dir/store}. */
    static MountedStore mount(Path store, Path mountpoint, String... options) {
        requireFuse();
        try {
            Files.createDirectories(mountpoint);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        MountedStore mounted = new MountedStore(store, mountpoint);
        mounted.start(options);
        return mounted;
    }

    void start(String... options) {
        List<String> args = new ArrayList<>(List.of(store.toString(), mountpoint.toString()));
        if (options.length > 0) {
            args.addAll(List.of("-o", String.join(",", options)));
        }
        Shell.vimgfsRaw(args.toArray(String[]::new)).ok();
        assertTrue(isMounted(), "vimgfs returned before " + mountpoint + " was mounted");
    }

    boolean isMounted() {
        return Shell.run("findmnt", "-n", "-t", "fuse.vimgfs", mountpoint.toString()).exit() == 0;
    }

    Path path(String relative) {
        return mountpoint.resolve(relative);
    }

    /** The mount path as a string, for command lines. */
    String at(String relative) {
        return path(relative).toString();
    }

    /** {@code ls -A} of a directory in the mount; empty when it does not exist. */
    List<String> ls(String relative) {
        Shell.Result result = Shell.run("ls", "-A", at(relative));
        return result.exit() != 0 || result.out().isBlank() ? List.of() : List.of(result.out().strip().split("\n"));
    }

    /** Whether an entry (a dangling link included) exists in the mount, as {@code test -e -o -L} sees it. */
    boolean exists(String relative) {
        return Shell.run("test", "-e", at(relative), "-o", "-L", at(relative)).exit() == 0;
    }

    /** The store's staging directory: what uploads leave behind. */
    List<String> stagingFiles() {
        Path staging = store.resolve(".vimgfs/staging");
        if (!Files.isDirectory(staging)) {
            return List.of();
        }
        try (var files = Files.list(staging)) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Where an image's bytes live in the store. */
    Path blob(String hex) {
        return store.resolve("blobs/sha256").resolve(hex);
    }

    /** The absolute path of an image's blob, where by-digest/sha256/<hex> links to (the default data mode). */
    String blobPath(String hex) {
        return blob(hex).toAbsolutePath().normalize().toString();
    }

    /** Unmounts and waits for the daemon to let go of the store. */
    void unmount() {
        if (!isMounted()) {
            return;
        }
        // Read while mounted: the daemon removes its record as it unmounts, before it closes the
        // store (writing index.json and its cache), and a caller must not delete the store meanwhile.
        long pid = daemonPid();
        Shell.Result result = Shell.run(Duration.ofSeconds(30), Map.of(), List.of("fusermount", "-u", mountpoint.toString()));
        if (result.exit() != 0) {
            Shell.run(Duration.ofSeconds(30), Map.of(), List.of("fusermount", "-u", "-z", mountpoint.toString()));
        }
        waitForDaemonExit(pid);
    }

    /** Wait until the daemon that served this mount is gone. */
    private void waitForDaemonExit(long pid) {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (pid > 0 && System.nanoTime() < deadline) {
            if (ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true)) {
                return;
            }
            sleep(50);
        }
        if (pid > 0) {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            throw new AssertionError("the vimgfs daemon (pid " + pid + ") did not exit within 30 s of unmount\n" + log());
        }
    }

    /** The pid of the daemon serving this mount, from its record in .vimgfs/mounts/; -1 when none. */
    long daemonPid() {
        return daemonPid(store, mountpoint);
    }

    /**
     * Waits (up to 30 s, what a JVM's exit can take on a loaded 2-core machine) until a daemon is
     * gone, so that no daemon of one test still writes to its store while JUnit deletes the
     * directory or the next test starts. A pid of -1 or less is taken as gone.
     */
    static void awaitExit(long pid) {
        if (pid > 0) {
            Eventually.within(Duration.ofSeconds(30), "the vimgfs daemon (pid " + pid + ") exits",
                    () -> ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true));
        }
    }

    /** The pid of the daemon serving {@code mountpoint} from {@code store}, from its record; -1 when none. */
    static long daemonPid(Path store, Path mountpoint) {
        Path mounts = store.resolve(".vimgfs/mounts");
        if (!Files.isDirectory(mounts)) {
            return -1;
        }
        try (var records = Files.list(mounts)) {
            for (Path record : records.toList()) {
                String claim = Files.readString(record).strip();
                if (claim.startsWith("at " + mountpoint + " by pid ")) {
                    return Long.parseLong(claim.substring(claim.lastIndexOf("pid ") + 4));
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    String log() {
        try {
            Path log = store.resolve(".vimgfs/mount.log");
            return Files.exists(log) ? Files.readString(log) : "";
        } catch (IOException e) {
            return "(log unreadable: " + e + ")";
        }
    }

    @Override
    public void close() {
        unmount();
    }

    static void requireFuse() {
        boolean usable = Files.exists(Path.of("/dev/fuse")) && Files.isWritable(Path.of("/dev/fuse"));
        if (!usable && "1".equals(System.getenv("VIMGFS_REQUIRE_FUSE"))) {
            throw new AssertionError("/dev/fuse is not usable and VIMGFS_REQUIRE_FUSE=1: the mount tests must run here");
        }
        Assumptions.assumeTrue(usable, "no usable /dev/fuse");
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
