package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 12: a mount and the CLI change names of one store at the same time, each committing to
 * the journal; each sees the other's changes within about a second, none is lost, and
 * index.json (what skopeo reads) catches up.
 */
class JournalMountTest {
    /**
     * The README promises a second (the mount looks every 500 ms; index.json is rewritten at most
     * about once a second). The limit is wider: the mount's refresh shares one thread with its
     * collector and housekeeping, and each skopeo or vimgfs call here is a process start on a
     * loaded 2-core machine. A change that never shows still fails.
     */
    private static final Duration ABOUT_A_SECOND = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    @Test
    void aMountAndTheCliChangingNamesAtOnceSeeEachOthersChangesAndLoseNone() throws Exception {
        Path base = Fixtures.small(dir, "base.img", 50_000, 7);
        List<Path> uploads = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            uploads.add(Fixtures.small(dir, "up" + i + ".img", 20_000 + i, 100 + i));
        }
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.vimgfs(m.store, "import", base.toString(), "cli:base").ok();
            Eventually.within(ABOUT_A_SECOND, "the CLI's import in the mount", () -> m.exists("tags/cli/base"));

            CompletableFuture<Void> mountSide = CompletableFuture.runAsync(() -> {
                try {
                    for (int i = 0; i < uploads.size(); i++) {
                        Files.copy(uploads.get(i), m.path("incoming/mnt:" + i)); // placed when closed
                        if (i % 3 == 0) {
                            Files.delete(m.path("tags/mnt/" + i));
                        }
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            for (int i = 0; i < 6; i++) {
                Shell.vimgfs(m.store, "tag", "cli:base", "cli:" + i).ok();
            }
            mountSide.get(120, TimeUnit.SECONDS);

            TreeSet<String> cliNames = new TreeSet<>(List.of("base", "0", "1", "2", "3", "4", "5"));
            TreeSet<String> mountNames = new TreeSet<>();
            for (int i = 0; i < uploads.size(); i++) {
                if (i % 3 != 0) {
                    mountNames.add(Integer.toString(i));
                }
            }
            Eventually.within(ABOUT_A_SECOND, "every CLI tag in the mount", () -> new TreeSet<>(m.ls("tags/cli")).equals(cliNames));
            assertEquals(mountNames, new TreeSet<>(m.ls("tags/mnt")), "every name the mount placed, none it removed");

            List<String> listed = names(m.store);
            for (String name : mountNames) {
                assertTrue(listed.contains("mnt:" + name), "the CLI sees the mount's mnt:" + name + ": " + listed);
            }
            assertNotEquals(0, Shell.vimgfs(m.store, "inspect", "mnt:0").exit(), "mnt:0 was removed through the mount");

            Eventually.within(ABOUT_A_SECOND, "skopeo reads the newest names from index.json",
                    () -> skopeoReads(m.store, "mnt:29") && skopeoReads(m.store, "cli:5"));
        }
        Path store = dir.resolve("store");
        Shell.vimgfs(store, "fsck").ok();
        List<String> listed = names(store);
        assertTrue(listed.contains("cli:5") && listed.contains("mnt:28") && !listed.contains("mnt:27"), listed.toString());
        assertTrue(skopeoReads(store, "mnt:28"), "index.json has every name after the unmount");
    }

    private static List<String> names(Path store) {
        return Shell.vimgfs(store, "ls", "-q").ok().out().lines().map(String::strip).toList();
    }

    private static boolean skopeoReads(Path store, String name) {
        return Shell.run("skopeo", "inspect", "--raw", "oci:" + store + ":" + name).exit() == 0;
    }
}
