package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The admin verbs as a new user tries them (issue 2's "done when"), with the built jar, real
 * qemu-img and real skopeo: import, ls, inspect, rm, gc, fsck, and copying out with skopeo.
 */
class CommandLineTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Path qcow2(String name, String pattern) {
        Path image = dir.resolve(name);
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", image.toString(), "64M").ok();
        Shell.run("qemu-io", "-c", "write -P " + pattern + " 0 1M", image.toString()).ok();
        return image;
    }

    private static JsonNode qemuInfo(Path image) throws IOException {
        return JSON.readTree(Shell.run("qemu-img", "info", "--output=json", image.toString()).ok().out());
    }

    @Test
    void importThenLsShowsDigestFormatAndVirtualSizeAsTheToolsDo() throws IOException {
        Path store = dir.resolve("store");
        Path disk = qcow2("disk.qcow2", "0x5a");
        String digest = Shell.sha256(disk);

        Shell.Result imported = Shell.vimgfs(store, "import", disk.toString(), "cirros:0.6.2").ok();
        assertTrue(imported.out().contains("sha256:" + digest), imported.out());

        String ls = Shell.vimgfs(store, "ls", "--bytes").ok().out();
        String line = ls.lines().filter(l -> l.startsWith("cirros:0.6.2 ")).findFirst().orElseThrow(() -> new AssertionError(ls));
        String[] columns = line.trim().split("\\s+");
        assertEquals(digest, columns[1]);
        assertEquals("qcow2", columns[2]);
        assertEquals(qemuInfo(disk).path("virtual-size").asText(), columns[3]);
        assertEquals(Long.toString(Files.size(disk)), columns[4]);

        JsonNode inspect = JSON.readTree(Shell.vimgfs(store, "inspect", digest.substring(0, 8)).ok().out());
        assertEquals("sha256:" + digest, inspect.path("digest").asText());
        assertEquals("cirros:0.6.2", inspect.path("names").get(0).asText());
        assertEquals(qemuInfo(disk).path("virtual-size").asLong(), inspect.path("virtualSize").asLong());
        assertEquals(65536, inspect.path("clusterSize").asInt());
    }

    @Test
    void skopeoReadsTheStoreAndCopiesTheImageOutByteIdentical() throws IOException {
        Path store = dir.resolve("store");
        Path disk = qcow2("disk.qcow2", "0x33");
        Shell.vimgfs(store, "import", disk.toString(), "cirros:0.6.2").ok();

        JsonNode manifest = JSON.readTree(Shell.run("skopeo", "inspect", "--raw", "oci:" + store + ":cirros:0.6.2").ok().out());
        assertEquals("application/vnd.vimgfs.image.v1", manifest.path("artifactType").asText());
        assertEquals(1, manifest.path("layers").size());
        assertEquals("sha256:" + Shell.sha256(disk), manifest.path("layers").get(0).path("digest").asText());
        assertEquals("application/vnd.vimgfs.disk.qcow2", manifest.path("layers").get(0).path("mediaType").asText());

        Path out = dir.resolve("out");
        Shell.run("skopeo", "copy", "oci:" + store + ":cirros:0.6.2", "dir:" + out).ok(); // verifies every digest
        Shell.run("cmp", disk.toString(), out.resolve(Shell.sha256(disk)).toString()).ok();
    }

    @Test
    void hostileAndTruncatedImagesAreRefusedWithAReason() throws IOException {
        Path store = dir.resolve("store");
        Path hostile = dir.resolve("hostile.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "-u",
                hostile.toString(), "1M").ok();
        Shell.Result refused = Shell.vimgfs(store, "import", hostile.toString(), "evil:1");
        assertEquals(1, refused.exit());
        assertTrue(refused.err().contains("/etc/passwd") && refused.err().contains("outside the store"), refused.err());

        Path external = dir.resolve("external.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=" + dir.resolve("data.raw"),
                external.toString(), "1M").ok();
        Shell.Result dataFile = Shell.vimgfs(store, "import", external.toString(), "evil:2");
        assertEquals(1, dataFile.exit());
        assertTrue(dataFile.err().contains("data file"), dataFile.err());

        Path truncated = qcow2("full.qcow2", "0x44");
        Shell.run("truncate", "-s", Long.toString(Files.size(truncated) / 2), truncated.toString()).ok();
        Shell.Result cut = Shell.vimgfs(store, "import", truncated.toString(), "cut:1");
        assertEquals(1, cut.exit());
        assertTrue(cut.err().contains("truncated"), cut.err());

        assertEquals("", Shell.vimgfs(store, "ls", "-q").ok().out().strip());
        assertEquals(0, blobCount(store));
    }

    @Test
    void rmThenGcLeavesNoBlobAndFsckIsClean() throws IOException {
        Path store = dir.resolve("store");
        Shell.vimgfs(store, "import", qcow2("a.qcow2", "0x01").toString(), "a:1").ok();
        Shell.vimgfs(store, "import", qcow2("b.qcow2", "0x02").toString(), "b:1").ok();
        Shell.vimgfs(store, "tag", "a:1", "a:2").ok();
        Shell.vimgfs(store, "rm", "a:1", "a:2", "b:1").ok();
        Shell.Result dryRun = Shell.vimgfs(store, "gc", "--dry-run").ok();
        assertTrue(dryRun.out().contains("would free 0 files"), dryRun.out()); // rm already took the blobs
        Shell.vimgfs(store, "gc").ok();
        assertEquals(0, blobCount(store));
        assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
    }

    @Test
    void gcDryRunSaysWhatAndWhyAndFsckRepairsACorruptBlob() throws IOException {
        Path store = dir.resolve("store");
        Path disk = qcow2("a.qcow2", "0x07");
        Shell.vimgfs(store, "import", disk.toString(), "a:1").ok();
        Path orphan = store.resolve("blobs/sha256/" + "ab".repeat(32));
        Files.writeString(orphan, "left by a crash");
        String dryRun = Shell.vimgfs(store, "gc", "-n").ok().out();
        assertTrue(dryRun.contains("would remove blobs/sha256/" + "ab".repeat(32)) && dryRun.contains("not referenced"), dryRun);
        assertTrue(Files.exists(orphan));
        Files.delete(orphan);

        Path layer = store.resolve("blobs/sha256/" + Shell.sha256(disk));
        byte[] bytes = Files.readAllBytes(layer);
        bytes[100] ^= 1;
        Shell.run("chattr", "-i", layer.toString()).ok(); // a placed blob is immutable, even for root
        Files.write(layer, bytes);
        Shell.Result check = Shell.vimgfs(store, "fsck");
        assertEquals(1, check.exit());
        assertTrue(check.out().contains(Shell.sha256(disk)) && check.out().contains("corrupt"), check.out());
        Shell.Result repair = Shell.vimgfs(store, "fsck", "--repair").ok();
        assertTrue(repair.out().contains("dropped index entry a:1"), repair.out());
        Shell.vimgfs(store, "fsck").ok();
        assertFalse(Shell.vimgfs(store, "ls", "-q").ok().out().contains("a:1"));
    }

    @Test
    void exitCodesAndOneLineErrors() {
        Path store = dir.resolve("store");
        assertEquals(2, Shell.vimgfs(store, "import").exit());
        assertEquals(2, Shell.vimgfs(store, "frobnicate", "x", "y", "z").exit());
        assertEquals(0, Shell.vimgfs(store, "gc", "--help").exit());
        Shell.Result missing = Shell.vimgfs(store, "inspect", "nothing:here");
        assertEquals(1, missing.exit());
        assertEquals(1, missing.err().strip().lines().count(), missing.err());
        assertTrue(missing.err().contains(store.toString()) && missing.err().contains("nothing:here")
                && missing.err().contains("vimgfs ls"), missing.err());
        Shell.Result sha512 = Shell.vimgfs(store, "inspect", "sha512:" + "a".repeat(128));
        assertEquals(1, sha512.exit());
        assertTrue(sha512.err().contains("only sha256"), sha512.err());
        Shell.Result noFile = Shell.vimgfs(store, "import", dir.resolve("absent.qcow2").toString(), "a:1");
        assertEquals(1, noFile.exit());
        assertTrue(noFile.err().contains("absent.qcow2"), noFile.err());
    }

    @Test
    void namesThatWouldShadowADigestOrBreakTheTreeAreRefused() throws IOException {
        Path store = dir.resolve("store");
        Path b1 = dir.resolve("b1.raw");
        Files.writeString(b1, "base one");
        String hex = Shell.sha256(b1);
        Shell.vimgfs(store, "import", b1.toString(), "b1:1").ok();
        Path overlay = dir.resolve("vm.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-b", hex, "-F", "raw", "-u", overlay.toString(), "64M").ok();
        Shell.vimgfs(store, "import", overlay.toString(), "myapp:1.0").ok();
        Path b2 = dir.resolve("b2.raw");
        Files.writeString(b2, "base two");

        assertRefused(Shell.vimgfs(store, "import", b2.toString(), "myapp:" + hex), "a tag cannot be 64 lowercase hex digits");
        assertRefused(Shell.vimgfs(store, "import", b2.toString(), "myapp2/" + hex), "a path component cannot be 64 lowercase hex");
        assertRefused(Shell.vimgfs(store, "tag", "b1:1", "myapp:" + hex), "a tag cannot be 64 lowercase hex digits");
        assertRefused(Shell.vimgfs(store, "tag", "b1:1", "a/" + "c".repeat(200) + ":" + "t".repeat(55)), "NAME_MAX");

        Shell.vimgfs(store, "tag", "b1:1", "a:b").ok();
        assertRefused(Shell.vimgfs(store, "import", b2.toString(), "a/b/c:1"), "tags/a/b");
        assertRefused(Shell.vimgfs(store, "tag", "b1:1", "a/b"), "tags/a/b");
        Shell.vimgfs(store, "tag", "b1:1", "x/y:1").ok();
        assertRefused(Shell.vimgfs(store, "tag", "b1:1", "x:y"), "tags/x/y");

        assertEquals(Set.of("b1:1", "myapp:1.0", "a:b", "x/y:1"),
                Set.copyOf(Shell.vimgfs(store, "ls", "-q").ok().out().strip().lines().toList()));
        assertEquals("sha256:" + hex, JSON.readTree(Shell.vimgfs(store, "inspect", hex).ok().out()).path("digest").asText());
    }

    private static void assertRefused(Shell.Result result, String rule) {
        assertEquals(1, result.exit(), result.err());
        assertEquals(1, result.err().strip().lines().count(), result.err());
        assertTrue(result.err().contains(rule), result.err());
    }

    private static long blobCount(Path store) throws IOException {
        try (Stream<Path> blobs = Files.list(store.resolve("blobs/sha256"))) {
            return blobs.count();
        }
    }
}
