package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The stopped VM, as an operator meets it: its overlay lives in a held directory, the base's last
 * tag is removed, gc runs, and the VM's disk still opens; holds by name and prefix with their
 * reasons, prune's explanations, and a prune killed half way.
 */
class HoldsPruneTest {
    /** The README promises a second for another process's change to show; wider for a loaded 2-core machine. */
    private static final java.time.Duration REFRESH_LIMIT = java.time.Duration.ofSeconds(10);

    @TempDir
    Path dir;

    @Test
    void nothingAStoppedVmNeedsIsCollectedAndEveryDecisionSaysWhy() throws Exception {
        try (MountedStore m = MountedStore.mount(dir)) {
            String direct = place(m, "cirros:0.6.2", 1);   // vm1: backing through by-digest/ of this mount
            String chained = place(m, "base:two", 2);      // vm2: two overlays outside the store, then by-digest/
            String blobPath = place(m, "base:three", 3);   // vm3: backing is the store's blob path itself
            String golden = place(m, "golden:1", 4);
            String rescue = place(m, "rescue:1", 5);
            String scratch = place(m, "scratch:1", 6);
            String open = place(m, "app:1", 7);
            Path vms = Files.createDirectories(dir.resolve("vms/prod"));
            Path outside = Files.createDirectories(dir.resolve("elsewhere"));
            Shell.vimgfs(m.store, "hold", "add", "--overlays", dir.resolve("missing").toString()).failed();
            Shell.vimgfs(m.store, "hold", "add", "nosuch:1").failed();
            Shell.vimgfs(m.store, "hold", "add", "--overlays", dir.resolve("vms").toString(), "--why", "my VMs").ok();
            Shell.vimgfs(m.store, "hold", "add", "golden:1", "--why", "golden image").ok();
            Shell.vimgfs(m.store, "hold", "add", rescue.substring(0, 10), "--why", "rescue disk").ok();

            Path vm1 = overlay(vms.resolve("vm1.qcow2"), m.at("by-digest/sha256/" + direct), "raw");
            // (a tags/ backing path follows its name: once the tag is removed QEMU cannot open it either)
            overlay(outside.resolve("a.qcow2"), m.at("by-digest/sha256/" + chained), "raw");
            overlay(outside.resolve("b.qcow2"), outside.resolve("a.qcow2").toString(), "qcow2");
            overlay(vms.resolve("vm2.qcow2"), outside.resolve("b.qcow2").toString(), "qcow2");
            overlay(vms.resolve("vm3.qcow2"), m.blobPath(blobPath), "raw");
            Shell.run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 4k", vm1.toString()).ok();

            for (String tag : List.of("cirros/0.6.2", "base/two", "base/three", "golden/1", "rescue/1")) {
                Shell.run("rm", m.at("tags/" + tag)).ok();
            }
            Shell.vimgfs(m.store, "gc").ok();
            for (String kept : List.of(direct, chained, blobPath, golden, rescue)) {
                assertTrue(m.exists("by-digest/sha256/" + kept), kept + " is kept without names");
            }
            Shell.run("qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 4k", "-c", "read -P 1 64k 4k", vm1.toString()).ok();
            Shell.run("qemu-io", "-r", "-f", "qcow2", "-c", "read -P 2 64k 4k", vms.resolve("vm2.qcow2").toString()).ok();
            Shell.run("qemu-io", "-r", "-f", "qcow2", "-c", "read -P 3 64k 4k", vms.resolve("vm3.qcow2").toString()).ok();

            String holds = Shell.vimgfs(m.store, "hold", "ls").ok().out();
            assertTrue(holds.contains("golden:1 (sha256:" + golden + ")") && holds.contains("golden image"), holds);
            assertTrue(holds.contains(rescue.substring(0, 10) + " (sha256:" + rescue + ")") && holds.contains("rescue disk"), holds);
            assertTrue(holds.contains("overlays under " + dir.resolve("vms")) && holds.contains("my VMs"), holds);
            assertTrue(holds.contains(direct.substring(0, 12)) && holds.contains(chained.substring(0, 12)), holds);
            String all = Shell.vimgfs(m.store, "ls", "--all").ok().out();
            assertTrue(all.contains("backing of " + vms.resolve("vm2.qcow2")), all);
            assertFalse(Shell.vimgfs(m.store, "ls").ok().out().contains(direct), "plain ls shows names only");
            Shell.vimgfs(m.store, "tag", "sha256:" + golden, "golden:again").ok();
            Eventually.within(REFRESH_LIMIT, "a kept image can be named again",
                    () -> m.exists("tags/golden/again"));

            Process reader = Shell.spawn("sh", "-c", "exec 3<'" + m.at("by-digest/sha256/" + open) + "'; sleep 30");
            try {
                Eventually.within(java.time.Duration.ofSeconds(30), "the reader has the blob open", // each look is a JVM start
                        () -> Shell.vimgfs(m.store, "status").ok().out().contains("sleep 30"));
                String dry = Shell.vimgfs(m.store, "prune", "--dry-run", "--unused-for", "0s").ok().out();
                assertTrue(dry.contains("would remove sha256:" + scratch + " scratch:1"), dry);
                assertTrue(dry.contains("keep sha256:" + golden + " golden:again") && dry.contains("held: golden image"), dry);
                assertTrue(dry.contains("keep sha256:" + open + " app:1") && dry.contains("in use by pid "), dry);
                assertTrue(dry.contains("keep sha256:" + direct + " <none>") && dry.contains("backing of " + vm1), dry);
                assertTrue(m.exists("tags/scratch/1"), "a dry run changes nothing");

                String real = Shell.vimgfs(m.store, "prune", "--unused-for", "0s").ok().out();
                assertTrue(real.contains("removed sha256:" + scratch), real);
                Eventually.within(REFRESH_LIMIT, "scratch:1 is gone from the mount",
                        () -> !m.exists("tags/scratch/1"));
                for (String kept : List.of(direct, chained, blobPath, golden, rescue, open)) {
                    assertTrue(m.exists("by-digest/sha256/" + kept), kept + " survives prune: " + real);
                }
            } finally {
                reader.descendants().forEach(ProcessHandle::destroyForcibly);
                reader.destroyForcibly().waitFor();
            }

            Files.delete(vm1);
            Shell.vimgfs(m.store, "gc").ok();
            Eventually.within(REFRESH_LIMIT, "its overlay deleted, the next gc collects the base",
                    () -> !m.exists("by-digest/sha256/" + direct));
            assertTrue(m.exists("by-digest/sha256/" + chained));
            Shell.vimgfs(m.store, "hold", "rm", "--overlays", dir.resolve("vms").toString()).ok();
            Eventually.within(REFRESH_LIMIT, "the directory's hold ended: what only it kept goes",
                    () -> !m.exists("by-digest/sha256/" + chained));
            Shell.vimgfs(m.store, "fsck").ok();
        }
    }

    @Test
    void aPruneKilledHalfWayLeavesAStoreThatOpensAndChecksClean() throws Exception {
        Path list = dir.resolve("list");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            Path file = Fixtures.small(dir, "f" + i + ".raw", 4096, 100 + i);
            lines.add(file + " old:" + i);
        }
        Files.write(list, lines);
        Path store = dir.resolve("store");
        Shell.vimgfs(store, "import", "--from-list", list.toString()).ok();
        List<String> command = List.of(Shell.java(), "-jar", Shell.jar().toString(), "--store", store.toString(),
                "prune", "--unused-for", "0s");
        Process prune = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        // kill it once it has begun to change the store (not after a fixed time, which on a loaded
        // machine can come before the JVM has even opened the store); a prune that ends first is fine too
        long journalBefore = sizeOf(store.resolve(".vimgfs/journal"));
        long blobsBefore = blobs(store);
        Eventually.within(java.time.Duration.ofSeconds(120), "the prune begins to remove images",
                () -> !prune.isAlive() || sizeOf(store.resolve(".vimgfs/journal")) != journalBefore || blobs(store) != blobsBefore);
        prune.destroyForcibly().waitFor(); // SIGKILL
        Shell.Result fsck = Shell.vimgfs(store, "fsck");
        assertEquals(0, fsck.exit(), fsck.out() + fsck.err());
        Shell.vimgfs(store, "ls").ok();
        Shell.vimgfs(store, "gc").ok();
        assertEquals(0, Shell.vimgfs(store, "fsck").exit());
    }

    private static long sizeOf(Path file) {
        try {
            return Files.size(file);
        } catch (java.io.IOException e) {
            return -1;
        }
    }

    private static long blobs(Path store) {
        try (var files = Files.list(store.resolve("blobs/sha256"))) {
            return files.count();
        } catch (java.io.IOException e) {
            return -1;
        }
    }

    /** Places a 1 MiB raw image filled with {@code fill} through the mount; returns its hex digest. */
    private String place(MountedStore m, String name, int fill) throws Exception {
        Path file = dir.resolve(name.replace(':', '_') + ".raw");
        Shell.run("qemu-img", "create", "-q", "-f", "raw", file.toString(), "1M").ok();
        Shell.run("qemu-io", "-f", "raw", "-c", "write -P " + fill + " 0 1M", file.toString()).ok();
        Shell.run("cp", file.toString(), m.at("incoming/" + name)).ok();
        return Shell.sha256(file);
    }

    private static Path overlay(Path file, String backing, String format) {
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", format, file.toString()).ok();
        return file;
    }
}
