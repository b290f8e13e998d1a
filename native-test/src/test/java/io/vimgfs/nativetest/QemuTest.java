package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU opening images straight from the mount (issue 4): qemu-img and qemu-io through
 * by-digest/, tags/ and by-name/ paths, overlays outside the store, O_DIRECT, locking,
 * layered images inside the store, and the refusals of SPEC §6. One mount for the class.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class QemuTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    Path dir;
    MountedStore mount;
    Path base;
    String baseHex;

    @BeforeAll
    void mountWithABase(@TempDir Path tempDir) {
        dir = tempDir;
        mount = MountedStore.mount(dir);
        base = dir.resolve("base.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", base.toString(), "64M").ok();
        Shell.run("qemu-io", "-c", "write -P 0xa1 0 1M", "-c", "write -P 0xb2 32M 2M", base.toString()).ok();
        baseHex = Shell.sha256(base);
        Shell.run("cp", base.toString(), mount.path("incoming/cirros:0.6.2").toString()).ok();
    }

    @AfterAll
    void unmount() {
        if (mount != null) {
            mount.close();
        }
    }

    private String byDigest(String hex) {
        return mount.path("by-digest/sha256/" + hex).toString();
    }

    private List<String> threePaths() {
        return List.of(byDigest(baseHex), mount.path("tags/cirros/0.6.2").toString(),
                mount.path("by-name/cirros:0.6.2").toString());
    }

    private static JsonNode info(String... args) throws IOException {
        List<String> command = new java.util.ArrayList<>(List.of("qemu-img", "info", "--output=json"));
        command.addAll(List.of(args));
        return JSON.readTree(Shell.run(Duration.ofSeconds(60), Map.of(), command).ok().out());
    }

    @Test
    void qemuImgInfoCheckCompareAndConvertThroughEveryPath() throws IOException {
        for (String path : threePaths()) {
            JsonNode info = info(path);
            assertEquals("qcow2", info.path("format").asText(), path);
            assertEquals(64L << 20, info.path("virtual-size").asLong(), path);
            Shell.run("qemu-img", "check", path).ok();
            Shell.run("qemu-img", "compare", base.toString(), path).ok();
            Path out = dir.resolve("out-" + Math.abs(path.hashCode()) + ".raw");
            Shell.run("qemu-img", "convert", "-O", "raw", path, out.toString()).ok();
            Shell.run("qemu-img", "compare", "-f", "raw", "-F", "qcow2", out.toString(), base.toString()).ok();
        }
    }

    @Test
    void anOverlayOutsideTheStoreWritesToItselfAndReadsTheBase() {
        Path overlay = dir.resolve("vm1.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", byDigest(baseHex), overlay.toString()).ok();
        Shell.run("qemu-io", "-c", "write -P 0xcc 0 64k", overlay.toString()).ok();
        // the write landed in the overlay; the rest reads through to the base
        Shell.run("qemu-io", "-c", "read -P 0xcc 0 64k", "-c", "read -P 0xa1 64k 960k", "-c", "read -P 0xb2 32M 2M",
                overlay.toString()).ok();
        assertEquals(baseHex, Shell.sha256(Path.of(byDigest(baseHex))));
    }

    @Test
    void directAndWritebackReadsReturnTheSourceBytes() {
        for (String cache : List.of("none", "writeback")) {
            Shell.Result read = Shell.run("qemu-io", "-r", "-t", cache, "-c", "read -P 0xa1 0 1M",
                    "-c", "read -P 0xb2 32M 2M", "-c", "read -P 0 40M 1M", byDigest(baseHex)).ok();
            assertFalse(read.out().contains("Pattern verification failed"), read.out());
        }
    }

    @Test
    void twoReadersShareTheBaseAndAWritableOpenFailsCleanly() throws Exception {
        Process first = new ProcessBuilder("qemu-io", "-r", "-c", "sleep 3000", "-c", "read -P 0xa1 0 1M",
                byDigest(baseHex)).redirectErrorStream(true).start();
        try {
            // the first holds its shared lock while sleeping: wait until it has the blob open, not a fixed time
            String blob = mount.blobPath(baseHex);
            Eventually.within(Duration.ofSeconds(30), "the first qemu-io has the base open",
                    () -> Shell.run("ls", "-l", "/proc/" + first.pid() + "/fd").out().contains(blob) || !first.isAlive());
            Shell.run("qemu-io", "-r", "-c", "read -P 0xa1 0 1M", byDigest(baseHex)).ok();
            Shell.run("qemu-img", "info", "-U", byDigest(baseHex)).ok();
        } finally {
            assertTrue(first.waitFor(30, java.util.concurrent.TimeUnit.SECONDS));
        }
        assertEquals(0, first.exitValue(), new String(first.getInputStream().readAllBytes()));
        Shell.Result writable = Shell.run("qemu-io", "-c", "write -P 1 0 4k", byDigest(baseHex)).failed();
        assertTrue((writable.out() + writable.err()).contains("Operation not permitted"),
                "a read-write open reaches the store's immutable blob and is refused: " + writable.out() + writable.err());
    }

    @Test
    void anOverlayNamingItsBaseByDigestIsPlacedAndOpensFromEveryPath() throws IOException {
        Path overlay = dir.resolve("layer.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", byDigest(baseHex), overlay.toString()).ok();
        Shell.run("qemu-io", "-c", "write -P 0xdd 0 64k", overlay.toString()).ok();
        // name the base the way the store accepts and QEMU resolves from any directory: its bare digest
        Shell.run("qemu-img", "rebase", "-u", "-F", "qcow2", "-b", baseHex, overlay.toString()).ok();
        String overlayHex = Shell.sha256(overlay);
        Shell.run("cp", overlay.toString(), mount.path("incoming/layered:1").toString()).ok();
        for (String path : List.of(byDigest(overlayHex), mount.path("tags/layered/1").toString(),
                mount.path("by-name/layered:1").toString())) {
            JsonNode chain = JSON.readTree(Shell.run("qemu-img", "info", "--output=json", "--backing-chain", path).ok().out());
            assertEquals(2, chain.size(), path + ": " + chain);
            assertEquals(baseHex, chain.get(0).path("backing-filename").asText());
            Shell.run("qemu-io", "-r", "-c", "read -P 0xdd 0 64k", "-c", "read -P 0xa1 64k 960k", path).ok();
        }
        Shell.Result backing = Shell.run("getfattr", "--only-values", "-n", "user.vimgfs.backing", byDigest(overlayHex)).ok();
        assertEquals("sha256:" + baseHex, backing.out().strip());
    }

    @Test
    void gcKeepsABaseWhileAnOverlayNeedsIt() throws IOException {
        Path lower = dir.resolve("lower.raw");
        Shell.run("qemu-img", "create", "-q", "-f", "raw", lower.toString(), "8M").ok();
        Shell.run("qemu-io", "-f", "raw", "-c", "write -P 0x42 0 1M", lower.toString()).ok();
        String lowerHex = Shell.sha256(lower);
        Shell.run("cp", lower.toString(), mount.path("incoming/lower:1").toString()).ok();
        Path upper = dir.resolve("upper.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", lowerHex, "-u", upper.toString(), "8M").ok();
        String upperHex = Shell.sha256(upper);
        Shell.run("cp", upper.toString(), mount.path("incoming/upper:1").toString()).ok();

        Shell.run("rm", mount.path("tags/lower/1").toString()).ok();
        Shell.vimgfs(mount.store, "gc").ok();
        assertTrue(Files.exists(Path.of(byDigest(lowerHex))), "the base went while its overlay lives");
        Shell.run("qemu-io", "-r", "-c", "read -P 0x42 0 1M", mount.path("tags/upper/1").toString()).ok();

        Shell.run("rm", mount.path("tags/upper/1").toString()).ok();
        Shell.vimgfs(mount.store, "gc").ok();
        // gc deletes them, or the mount does: its own removal deletes a blob once index.json no
        // longer names it (within about a second), and its collector (every 2 s) what a reader had open
        Eventually.within(Duration.ofSeconds(10), "the overlay's blob is deleted",
                () -> !Files.exists(mount.store.resolve("blobs/sha256/" + upperHex)));
        Eventually.within(Duration.ofSeconds(10), "the base does not outlive its last overlay",
                () -> !Files.exists(mount.store.resolve("blobs/sha256/" + lowerHex)));
        // the kernel may keep a looked-up entry for the entry timeout (1 s)
        Eventually.within(Duration.ofSeconds(10), "by-digest to drop the base", () -> !Files.exists(Path.of(byDigest(lowerHex))));
        Eventually.within(Duration.ofSeconds(10), "by-digest to drop the overlay", () -> !Files.exists(Path.of(byDigest(upperHex))));
    }

    @Test
    void unsafeImagesAreRefusedWithTheRightErrnoAndALogLine() throws IOException {
        record Case(String name, List<String> create, String error, String logged) {
        }
        Path data = dir.resolve("data.raw");
        List<Case> cases = List.of(
                new Case("ext:1", List.of("-o", "data_file=" + data), "Operation not permitted", "external file"),
                new Case("passwd:1", List.of("-b", "/etc/passwd", "-F", "raw", "-u"), "Operation not permitted", "/etc/passwd"),
                new Case("dotdot:1", List.of("-b", "../x", "-F", "raw", "-u"), "Operation not permitted", "../x"),
                new Case("tagpath:1", List.of("-b", mount.path("tags/cirros/0.6.2").toString(), "-F", "qcow2", "-u"),
                        "Operation not permitted", "tags/cirros/0.6.2"),
                new Case("absent:1", List.of("-b", "ab".repeat(32), "-F", "qcow2", "-u"), "Operation not permitted", "not in the store"));
        for (Case c : cases) {
            Path image = dir.resolve(c.name().replace(':', '_') + ".qcow2");
            List<String> create = new java.util.ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
            create.addAll(c.create());
            create.addAll(List.of(image.toString(), "1M"));
            Shell.run(Duration.ofSeconds(60), Map.of(), create).ok();
            Shell.Result cp = Shell.run("cp", image.toString(), mount.path("incoming/" + c.name()).toString()).failed();
            assertTrue(cp.err().contains(c.error()), c.name() + ": " + cp.err());
            assertTrue(mount.log().contains(c.logged()), c.name() + " not explained in the log:\n" + mount.log());
            assertFalse(Files.exists(mount.path("tags/" + c.name().replace(':', '/'))));
        }
        Path truncated = dir.resolve("cut.qcow2");
        Files.copy(base, truncated);
        Shell.run("truncate", "-s", Long.toString(Files.size(base) - 100_000), truncated.toString()).ok();
        Shell.Result cp = Shell.run("cp", truncated.toString(), mount.path("incoming/cut:1").toString()).failed();
        assertTrue(cp.err().contains("Input/output error"), cp.err());
        assertTrue(mount.log().contains("truncated"), mount.log());
    }
}
