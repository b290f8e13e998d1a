package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store on a filesystem mounted read-only (a recovery boot, a read-only snapshot, an NFS
 * export): the verbs that only read work, and the verbs that write say in one line that the
 * store is read-only (issue 8). The filesystem is a real tmpfs, remounted {@code ro}.
 */
class ReadOnlyStoreTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void readingVerbsWorkAndWritingVerbsSayTheStoreIsReadOnly() throws Exception {
        MountedStore.requireFuse(); // the same privilege: root, to mount the tmpfs
        Path store = Files.createDirectories(dir.resolve("store"));
        Path disk = dir.resolve("disk.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", disk.toString(), "64M").ok();
        Shell.run("qemu-io", "-c", "write -P 0x5a 0 1M", disk.toString()).ok();
        String digest = Shell.sha256(disk);
        Shell.run("mount", "-t", "tmpfs", "-o", "size=32m", "vimgfs-test-ro", store.toString()).ok();
        try {
            Shell.vimgfs(store, "import", disk.toString(), "cirros:0.6.2").ok();
            Shell.run("mount", "-o", "remount,ro", store.toString()).ok();

            String ls = Shell.vimgfs(store, "ls").ok().out();
            assertTrue(ls.contains("cirros:0.6.2") && ls.contains(digest), ls);
            assertEquals("sha256:" + digest,
                    JSON.readTree(Shell.vimgfs(store, "inspect", "cirros:0.6.2").ok().out()).path("digest").asText());
            assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
            assertTrue(Shell.vimgfs(store, "status").ok().out().contains("images: 1 "));
            assertTrue(Shell.vimgfs(store, "gc", "--dry-run").ok().out().contains("would free 0 files"));

            Path other = dir.resolve("other.raw");
            Files.write(other, new byte[4096]);
            for (List<String> verb : List.of(List.of("fsck", "--repair"), List.of("tag", "cirros:0.6.2", "cirros:latest"),
                    List.of("rm", "cirros:0.6.2"), List.of("import", other.toString(), "other:1"), List.of("gc"))) {
                Shell.Result refused = Shell.vimgfs(store, verb.toArray(String[]::new));
                assertEquals(1, refused.exit(), verb + ": " + refused.err());
                assertEquals(1, refused.err().strip().lines().count(), verb + ": " + refused.err());
                assertTrue(refused.err().contains("read-only filesystem") && refused.err().contains(store.toString()),
                        verb + ": " + refused.err());
            }
            assertEquals("cirros:0.6.2", Shell.vimgfs(store, "ls", "-q").ok().out().strip(), "nothing changed");
        } finally {
            Shell.run("umount", "-l", store.toString());
        }
    }
}
