package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With {@code -o allow_other}, a hypervisor's unprivileged user reads images but can neither
 * write into the store nor remove anything (issue 4, SPEC §8).
 */
class PermissionsTest {
    private static final String USER = "vimgfs-hypervisor";

    @TempDir
    Path dir;

    private static Shell.Result asUser(String... command) {
        List<String> full = new ArrayList<>(List.of("runuser", "-u", USER, "--"));
        full.addAll(List.of(command));
        return Shell.run(Duration.ofSeconds(60), Map.of(), full);
    }

    @Test
    void anotherUserReadsButCannotWriteOrRemove() throws IOException {
        if (Shell.run("id", USER).exit() != 0) {
            Shell.run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER).ok();
        }
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // let the user reach the mount
        Path disk = dir.resolve("disk.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", disk.toString(), "16M").ok();
        Shell.run("qemu-io", "-c", "write -P 0x66 0 1M", disk.toString()).ok();
        Files.setPosixFilePermissions(disk, PosixFilePermissions.fromString("rw-r--r--"));
        String hex = Shell.sha256(disk);
        try (MountedStore mount = MountedStore.mount(dir, "allow_other")) {
            Shell.run("cp", disk.toString(), mount.path("incoming/cirros:1").toString()).ok();
            String image = mount.path("tags/cirros/1").toString();

            assertTrue(asUser("sha256sum", image).ok().out().startsWith(hex));
            asUser("qemu-img", "info", image).ok();
            asUser("qemu-io", "-r", "-c", "read -P 0x66 0 1M", image).ok();
            assertTrue(asUser("ls", "-l", mount.path("by-name").toString()).ok().out().contains("cirros:1"));

            Shell.Result write = asUser("cp", disk.toString(), mount.path("incoming/mine:1").toString()).failed();
            assertTrue(write.err().contains("Permission denied"), write.err());
            Shell.Result remove = asUser("rm", "-f", image).failed();
            assertTrue(remove.err().contains("Permission denied"), remove.err());
            Shell.Result removeImage = asUser("rm", "-f", mount.path("by-digest/sha256/" + hex).toString()).failed();
            assertTrue(removeImage.err().contains("Permission denied"), removeImage.err());
            Shell.Result openWritable = asUser("qemu-io", "-c", "write 0 4k", image).failed();
            assertTrue((openWritable.out() + openWritable.err()).contains("Operation not permitted"),
                    "the blob is immutable: " + openWritable.out() + openWritable.err());

            // an upload keeps the mode it was created with: 0600 stays private until placed
            Shell.sh("umask 077; cp " + disk + " " + mount.at("incoming/.private")).ok();
            assertEquals("600", Shell.run("stat", "-c", "%a", mount.at("incoming/.private")).ok().out().strip());
            Shell.Result peek = asUser("cat", mount.at("incoming/.private")).failed();
            assertTrue(peek.err().contains("Permission denied"), peek.err());
            // the store follows the mount's audience: allow_other without group= lets every user reach the blobs
            assertEquals("755", Shell.run("stat", "-c", "%a", mount.store.toString()).ok().out().strip());
            assertEquals("700", Shell.run("stat", "-c", "%a", mount.store.resolve(".vimgfs").toString()).ok().out().strip());
            assertEquals("444", Shell.run("stat", "-L", "-c", "%a", image).ok().out().strip());

            assertEquals(hex, Shell.sha256(Path.of(image)), "the image changed");
            assertTrue(Files.exists(mount.path("tags/cirros/1")));
        }
    }
}
