package io.vimgfs.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU's own NBD client (qemu-img, qemu-io) reads a disk through the server byte for byte, by URI
 * and as the {@code json:} backing of a qcow2 overlay with {@code reconnect-delay}; it cannot
 * write through it; an unknown export and an export that cannot verify its bytes are errors,
 * never other bytes.
 */
class NbdServerTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private Path disk;
    private NbdServer server;

    @BeforeEach
    void serveADisk() throws IOException {
        byte[] bytes = new byte[9 * MIB + 4096];
        new Random(7).nextBytes(bytes);
        disk = Files.write(dir.resolve("disk.raw"), bytes);
        NbdExport file = fileExport(disk);
        NbdExport failing = new NbdExport() {
            @Override
            public long size() {
                return 4 * MIB;
            }

            @Override
            public void read(ByteBuffer into, long offset) throws IOException {
                throw new IOException("chunk 0 hashes to sha256:aaaa, not sha256:bbbb");
            }
        };
        FileChannel open = FileChannel.open(disk);
        channels.add(open);
        NbdExport sent = new NbdExport() { // answered from the file with sendfile, as a lazy disk is
            @Override
            public long size() {
                return file.size();
            }

            @Override
            public void read(ByteBuffer into, long offset) {
                throw new AssertionError("a file export is sent, not read");
            }

            @Override
            public Optional<FileChannel> fileFor(long offset, int length) {
                return Optional.of(open);
            }
        };
        Map<String, NbdExport> exports = Map.of("disk", file, "bad", failing, "sent", sent);
        server = NbdServer.start(dir.resolve("run/nbd.sock"), new NbdServer.Exports() {
            @Override
            public Optional<NbdExport> find(String name) {
                return Optional.ofNullable(exports.get(name));
            }

            @Override
            public List<String> names() {
                return List.copyOf(exports.keySet());
            }
        });
    }

    private final List<FileChannel> channels = new java.util.ArrayList<>();

    @AfterEach
    void stop() throws IOException {
        server.close();
        for (FileChannel channel : channels) {
            channel.close();
        }
    }

    @Test
    void qemuReadsTheExportByteForByte() throws Exception {
        Result info = run("qemu-img", "info", "--output=json", uri("disk"));
        assertEquals(0, info.status(), info.text());
        assertTrue(info.text().contains("\"virtual-size\": " + Files.size(disk)), info.text());
        Result compare = run("qemu-img", "compare", "-f", "raw", "-F", "raw", uri("disk"), disk.toString());
        assertEquals(0, compare.status(), compare.text());
        assertTrue(compare.text().contains("Images are identical"), compare.text());
        Result sent = run("qemu-img", "compare", "-f", "raw", "-F", "raw", uri("sent"), disk.toString());
        assertTrue(sent.text().contains("Images are identical"), "sent from the file: " + sent.text());
        assertTrue(server.served() >= 3);
    }

    @Test
    void aQcow2OverlayOnTheExportWithReconnectDelayReadsTheDisk() throws Exception {
        Path overlay = dir.resolve("vm.qcow2");
        String backing = "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\",\"path\":\""
                + server.socket() + "\"},\"export\":\"disk\",\"reconnect-delay\":10}}";
        Result create = run("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "raw", overlay.toString());
        assertEquals(0, create.status(), create.text());
        Result write = run("qemu-io", "-c", "write -P 0x5a 1M 64k", overlay.toString());
        assertEquals(0, write.status(), write.text()); // writes land in the overlay
        Result pattern = run("qemu-io", "-c", "read -P 0x5a 1M 64k", overlay.toString());
        assertEquals(0, pattern.status(), pattern.text());
        assertTrue(pattern.text().contains("read 65536/65536 bytes"), pattern.text());
        Result compare = run("qemu-img", "compare", "-f", "raw", uri("disk"), disk.toString());
        assertEquals(0, compare.status(), "the export is unchanged: " + compare.text());
    }

    @Test
    void nothingCanBeWrittenThroughTheExport() throws Exception {
        Result write = run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 4k", uri("disk"));
        assertEquals(1, write.status(), write.text());
        assertTrue(write.text().contains("Permission denied"), write.text()); // QEMU refuses a read-only export read-write
        Result compare = run("qemu-img", "compare", "-f", "raw", "-F", "raw", uri("disk"), disk.toString());
        assertTrue(compare.text().contains("Images are identical"), compare.text());
    }

    @Test
    void anUnknownExportAndAnUnverifiableReadAreErrors() throws Exception {
        Result unknown = run("qemu-img", "info", uri("nope"));
        assertNotEquals(0, unknown.status());
        assertTrue(unknown.text().contains("no export named 'nope'"), unknown.text());
        Result bad = run("qemu-io", "-r", "-f", "raw", "-c", "read 0 64k", uri("bad"));
        assertTrue(bad.text().contains("Input/output error"), bad.text());
        Result list = run("qemu-nbd", "--list", "-k", server.socket().toString());
        assertTrue(list.text().contains("disk") && list.text().contains("bad") && list.text().contains("sent"), list.text());
    }

    private String uri(String export) {
        return "nbd+unix:///" + export + "?socket=" + server.socket();
    }

    static NbdExport fileExport(Path file) throws IOException {
        long size = Files.size(file);
        return new NbdExport() {
            @Override
            public long size() {
                return size;
            }

            @Override
            public void read(ByteBuffer into, long offset) throws IOException {
                try (FileChannel channel = FileChannel.open(file)) {
                    while (into.hasRemaining()) {
                        if (channel.read(into, offset + into.position()) < 0) {
                            throw new IOException("short file");
                        }
                    }
                }
            }
        };
    }

    record Result(int status, String text) {
    }

    static Result run(String... command) throws Exception {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String text = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), List.of(command) + " did not finish");
        return new Result(process.exitValue(), text);
    }
}
