package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store whose disk went emergency-read-only (issue 17): ext4 that hits an error aborts its
 * journal and answers every write with EROFS, while {@code /proc/mounts} still says {@code rw}
 * ({@code abort,emergency_ro} on current kernels) and statvfs sets no ST_RDONLY. The filesystem
 * is a real ext4 on a loop device, aborted with {@code mount -o remount,abort}. The reading verbs
 * must work then, the writing ones say in one line why not, and a running mount keeps serving
 * reads and refuses writes with EROFS.
 */
class EmergencyReadOnlyTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration UNMOUNT_LIMIT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @Test
    void anAbortedExt4StoreCanStillBeReadAndItsMountServesReads() throws Exception {
        MountedStore.requireFuse(); // the same privilege: root, to mount the loop filesystem
        Path image = dir.resolve("ext4.img");
        Path disk = Files.createDirectories(dir.resolve("disk"));
        Shell.run("truncate", "-s", "128M", image.toString()).ok();
        Shell.run("mkfs.ext4", "-q", image.toString()).ok();
        Shell.run("mount", "-o", "loop", image.toString(), disk.toString()).ok();
        try {
            Path store = disk.resolve("store");
            Path source = Fixtures.small(dir, "disk.raw", 1 << 20, 17);
            String hex = Fixtures.sha256(source);
            Shell.vimgfs(store, "import", source.toString(), "cirros:0.6.2").ok();
            try (MountedStore mount = MountedStore.mount(store, Files.createDirectories(dir.resolve("mnt")))) {
                Shell.run("mount", "-o", "remount,abort", disk.toString()).ok();
                String flags = Shell.run("findmnt", "-n", "-o", "OPTIONS", disk.toString()).ok().out().strip();
                assertTrue(flags.contains("abort") || flags.contains("ro"), "the filesystem was aborted: " + flags);

                assertReadingVerbsWork(store, hex);
                assertWritingVerbsSayWhy(store, source);

                Shell.Result cp = Shell.run("cp", source.toString(), mount.at("incoming/other:1")).failed();
                Readme.assertRowSays("the store's disk refuses writes", "Read-only file system", cp.err());
                Shell.Result rm = Shell.run("rm", mount.at("tags/cirros/0.6.2")).failed();
                assertTrue(rm.err().contains("Read-only file system"), "rm through the mount: " + rm.err());
                assertEquals(hex, Shell.sha256(mount.path("tags/cirros/0.6.2")), "the image reads through the mount");
                assertEquals(List.of("cirros"), mount.ls("tags"), "nothing was placed");

                Path second = Files.createDirectories(dir.resolve("mnt2"));
                Shell.Result again = Shell.vimgfsRaw(store.toString(), second.toString());
                assertEquals(1, again.exit(), "a new mount: " + again.err());
                assertTrue(again.err().strip().lines().count() == 1 && again.err().contains("read-only filesystem"),
                        "a new mount says why not in one line: " + again.err());
            }
        } finally {
            Shell.Result umount = Shell.run(UNMOUNT_LIMIT, Map.of(), List.of("umount", disk.toString()));
            if (umount.exit() != 0) {
                Shell.run(UNMOUNT_LIMIT, Map.of(), List.of("umount", "-l", disk.toString()));
            }
        }
    }

    /** ls, inspect, fsck and status, as an operator runs them to see what the store still holds. */
    private static void assertReadingVerbsWork(Path store, String hex) throws Exception {
        String ls = Shell.vimgfs(store, "ls").ok().out();
        assertTrue(ls.contains("cirros:0.6.2") && ls.contains(hex), ls);
        assertTrue(Shell.vimgfs(store, "ls", "--all").ok().out().contains(hex));
        assertEquals("sha256:" + hex,
                JSON.readTree(Shell.vimgfs(store, "inspect", "cirros:0.6.2").ok().out()).path("digest").asText());
        String fsck = Shell.vimgfs(store, "fsck").ok().out();
        assertTrue(fsck.contains("clean"), fsck);
        String status = Shell.vimgfs(store, "status").ok().out();
        assertTrue(status.contains("images: 1 ") && status.contains("daemon answers"), status);
        JsonNode json = JSON.readTree(Shell.vimgfs(store, "status", "--json").ok().out());
        assertEquals(1, json.path("images").path("count").asInt(), json.toPrettyString());
        Shell.vimgfs(store, "hold", "ls").ok();
        Shell.vimgfs(store, "gc", "--dry-run").ok();
        Shell.vimgfs(store, "prune", "--dry-run", "--keep-recent", "1").ok();
    }

    /** Each verb that would write fails at once, in one line that says the filesystem refuses writes. */
    private static void assertWritingVerbsSayWhy(Path store, Path source) {
        for (List<String> verb : List.of(List.of("tag", "cirros:0.6.2", "cirros:latest"), List.of("rm", "cirros:0.6.2"),
                List.of("import", source.toString(), "other:1"), List.of("gc"), List.of("fsck", "--repair"),
                List.of("hold", "add", "cirros:0.6.2"), List.of("prune", "--keep-recent", "0"))) {
            Shell.Result refused = Shell.vimgfs(store, verb.toArray(String[]::new));
            assertEquals(1, refused.exit(), verb + ": " + refused.err());
            assertEquals(1, refused.err().strip().lines().count(), verb + ": " + refused.err());
            assertTrue(refused.err().contains("read-only filesystem") && refused.err().contains(store.toString()),
                    verb + ": " + refused.err());
            if (verb.get(0).equals("import")) {
                String quote = refused.err().strip().replace(store.toString(), "/var/lib/vimgfs");
                Readme.assertQuotes(quote, quote);
            }
        }
        assertEquals("cirros:0.6.2", Shell.vimgfs(store, "ls", "-q").ok().out().strip(), "nothing changed");
    }
}
