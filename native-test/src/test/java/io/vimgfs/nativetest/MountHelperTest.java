package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The form {@code mount -t fuse.vimgfs STORE MOUNTPOINT -o …} and /etc/fstab use: mount(8) hands
 * it to mount.fuse, which runs {@code vimgfs STORE MOUNTPOINT -o OPTS} from the PATH. Here
 * mount.fuse3 is called directly with a PATH holding the built command; umount(8) unmounts.
 */
class MountHelperTest {
    @TempDir
    Path dir;

    @Test
    void mountFuseRunsVimgfsWithFstabOptionsAndUmountUnmounts() throws IOException {
        MountedStore.requireFuse();
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Path command = bin.resolve("vimgfs");
        Files.writeString(command, "#!/bin/sh\nexec " + Shell.java() + " -jar " + Shell.jar().toAbsolutePath() + " \"$@\"\n");
        Files.setPosixFilePermissions(command, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path store = dir.resolve("store");
        Path mountpoint = Files.createDirectories(dir.resolve("mnt"));
        Map<String, String> path = Map.of("PATH", bin + ":" + System.getenv("PATH"));

        // the options an fstab line carries, mount(8)'s own included
        Shell.run(Duration.ofSeconds(90), path, List.of("/sbin/mount.fuse3", store.toString(), mountpoint.toString(),
                "-t", "vimgfs", "-o", "rw,nofail,allow_other,_netdev")).ok();
        try {
            Shell.Result findmnt = Shell.run("findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", mountpoint.toString()).ok();
            assertTrue(findmnt.out().startsWith("fuse.vimgfs " + store), findmnt.out());
            assertTrue(findmnt.out().contains("allow_other"), findmnt.out());
            assertTrue(Files.isDirectory(mountpoint.resolve("incoming")));
        } finally {
            long daemon = MountedStore.daemonPid(store, mountpoint);
            Shell.run(Duration.ofSeconds(30), Map.of(), List.of("umount", mountpoint.toString()));
            // no daemon of this test may still write to the store when JUnit deletes it
            MountedStore.awaitExit(daemon);
        }
        Eventually.within(Duration.ofSeconds(10), "umount to unmount", () -> Shell.run("findmnt", mountpoint.toString()).exit() != 0);
    }
}
