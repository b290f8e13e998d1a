package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code -o data=fuse}: the daemon serves image bytes itself, for stores the hypervisor's user
 * cannot reach. A representative part of the mount suite, in that mode: placing and reading,
 * QEMU's direct and cached reads, and an open image that outlives its last name.
 */
class FuseDataModeTest {
    @TempDir
    Path dir;

    @Test
    void imagesAreRegularFilesServedByTheDaemon() {
        Path qcow2 = Fixtures.randomQcow2(16);
        String hex = Fixtures.sha256(qcow2);
        try (MountedStore m = MountedStore.mount(dir, "data=fuse")) {
            Shell.run("cp", qcow2.toString(), m.at("incoming/app:1")).ok();
            String image = m.at("by-digest/sha256/" + hex);

            assertAll(
                    () -> assertEquals("regular file 0444", Shell.run("stat", "-c", "%F %#a", image).ok().out().strip()),
                    () -> assertEquals(hex, Shell.sha256(m.path("tags/app/1"))),
                    () -> assertEquals(hex, Shell.sha256(m.path("by-name/app:1"))),
                    () -> assertEquals(0, Shell.run("qemu-img", "compare", "-q", qcow2.toString(), m.at("tags/app/1")).exit()),
                    () -> assertEquals(0, Shell.sh("dd if=" + image + " of=/dev/null bs=4k count=256 iflag=direct status=none").exit(),
                            "O_DIRECT reads work"),
                    () -> assertTrue(Shell.run("qemu-io", "-r", "-t", "none", "-f", "qcow2", "-c", "read 0 1M", image).ok().out()
                            .contains("read 1048576/1048576 bytes")),
                    () -> assertEquals("qcow2", Shell.run("getfattr", "--only-values", "-n", "user.vimgfs.format", image).ok().out()));
        }
    }

    @Test
    void anOpenImageAnswersFstatPreadAndMmapAfterItsLastNameGoes() throws Exception {
        Path source = Fixtures.small(dir, "img.raw", 2_000_000, 94);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir, "data=fuse")) {
            Shell.run("cp", source.toString(), m.at("incoming/gone:1")).ok();
            Process reader = DataPathTest.startReader(m.at("by-digest/sha256/" + hex), 2.0);
            try {
                DataPathTest.awaitLine(reader, "READY");
                Shell.vimgfs(m.store, "rm", "gone:1").ok(); // from another process: no .fuse_hidden rename

                String[] result = DataPathTest.finishReader(reader);

                assertEquals(List.of("2000000", hex, hex), List.of(result), "fstat, pread and mmap 2 s after removal");
            } finally {
                reader.destroyForcibly();
            }
        }
    }
}
