package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's command, {@code scripts/vimgfs STORE MOUNTPOINT}: the launcher starts the daemon
 * itself (one JVM start), returns once the mount is live, and reports a failure from the log.
 */
class LauncherTest {
    private static final Path LAUNCHER = Path.of("..", "scripts", "vimgfs").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    private static Shell.Result launcher(String... args) {
        List<String> command = new java.util.ArrayList<>(List.of(LAUNCHER.toString()));
        command.addAll(List.of(args));
        return Shell.run(Duration.ofSeconds(180), Map.of(), command);
    }

    @Test
    void mountsAndReturnsOnceLiveThenReportsABusyMountpoint() throws Exception {
        MountedStore.requireFuse();
        Path store = dir.resolve("store");
        Path mountpoint = Files.createDirectories(dir.resolve("mnt"));
        Files.writeString(dir.resolve("disk.raw"), "an image");
        launcher("--store", store.toString(), "import", dir.resolve("disk.raw").toString(), "tiny:1").ok();
        try {
            launcher(store.toString(), mountpoint.toString()).ok();
            // live on return: no polling here
            assertTrue(Files.isSymbolicLink(mountpoint.resolve("tags/tiny/1")));
            assertEquals("an image", Files.readString(mountpoint.resolve("tags/tiny/1")));
            Shell.Result again = launcher(store.toString(), mountpoint.toString());
            assertEquals(1, again.exit());
            assertTrue(again.err().contains("busy"), again.err());
        } finally {
            long daemon = MountedStore.daemonPid(store, mountpoint);
            Shell.run(Duration.ofSeconds(30), Map.of(), List.of("fusermount", "-u", mountpoint.toString()));
            // no daemon of this test may still write to the store when JUnit deletes it
            MountedStore.awaitExit(daemon);
        }
        Shell.Result missing = launcher(store.toString(), dir.resolve("absent").toString());
        assertEquals(1, missing.exit());
        assertTrue(missing.err().contains("does not exist"), missing.err());
        Eventually.within(Duration.ofSeconds(10), "the daemon to log its unmount",
                () -> Shell.run("grep", "-q", "unmounted", store.resolve(".vimgfs/mount.log").toString()).exit() == 0);
    }
}
