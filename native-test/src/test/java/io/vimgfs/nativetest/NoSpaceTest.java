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
 * A full disk (SPEC §4): the write that hits it fails with ENOSPC, so {@code cp} reports "No
 * space left on device", nothing is placed, and the images already stored are untouched.
 */
class NoSpaceTest {
    @TempDir
    Path dir;

    @Test
    void theWriteThatHitsAFullDiskFailsAndNothingStoredIsHurt() throws Exception {
        MountedStore.requireFuse();
        Path store = Files.createDirectories(dir.resolve("store"));
        Shell.run("mount", "-t", "tmpfs", "-o", "size=48m", "vimgfs-test-tmpfs", store.toString()).ok();
        try {
            Path small = dir.resolve("small.raw");
            Files.write(small, new byte[4 << 20]);
            Shell.run("dd", "if=/dev/urandom", "of=" + small, "bs=1M", "count=4", "status=none").ok();
            Path big = dir.resolve("big.raw");
            Shell.run("dd", "if=/dev/urandom", "of=" + big, "bs=1M", "count=64", "status=none").ok();
            try (MountedStore mount = MountedStore.mount(dir)) {
                Shell.run("cp", small.toString(), mount.path("incoming/small:1").toString()).ok();
                Shell.Result full = Shell.run(Duration.ofSeconds(60), Map.of(),
                        List.of("cp", big.toString(), mount.path("incoming/big:1").toString())).failed();
                assertTrue(full.err().contains("No space left on device"), full.err());
                assertTrue(mount.log().contains("ENOSPC"), mount.log());
                assertEquals(List.of("small"), mount.ls("tags"));
                assertEquals(Shell.sha256(small), Shell.sha256(mount.path("tags/small/1")));
            }
            assertEquals(0, Shell.vimgfs(store, "fsck").exit(), "fsck after the full disk");
            try (var staging = Files.list(store.resolve(".vimgfs/staging"))) {
                assertEquals(0, staging.count(), "the refused upload's staging file was left behind");
            }
        } finally {
            Shell.run("umount", "-l", store.toString());
        }
    }
}
