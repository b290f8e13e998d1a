package io.vimgfs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.io.Closeable;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code vimgfs status} on a store without a daemon to ask (the mounted cases are in native-test):
 * what it says about images, who has them open, and a mount whose daemon does not answer.
 */
class StatusCommandTest {
    @TempDir
    Path dir;

    /** What one run printed, and its exit code. */
    private record Run(int exit, String out, String err) {
        JsonNode json() throws Exception {
            return new ObjectMapper().readTree(out);
        }
    }

    private Run status(String... args) {
        CommandLine cli = Main.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        String[] all = new String[args.length + 3];
        all[0] = "--store";
        all[1] = dir.resolve("store").toString();
        all[2] = "status";
        System.arraycopy(args, 0, all, 3, args.length);
        return new Run(cli.execute(all), out.toString(), err.toString());
    }

    private ImageInfo importImage(ImageStore store, String name, String content) throws Exception {
        Path file = dir.resolve(name.replace(':', '_'));
        Files.writeString(file, content, StandardCharsets.UTF_8);
        return store.importFile(file, Reference.parse(name), bytes -> { });
    }

    @Test
    void anUnmountedStoreShowsItsImagesAndWhoHasThemOpen() throws Exception {
        ImageInfo image;
        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            image = importImage(store, "app:1.0", "disk bytes for status");
            importImage(store, "app:2.0", "another disk");
        }
        Path blob = dir.resolve("store/blobs/sha256").resolve(image.digest().hex());
        // qemu-system-x86_64 … -drive file=…,readonly=on, as a shell that holds the blob open
        Process reader = new ProcessBuilder("bash", "-c", "exec 3<'" + blob + "'; exec sleep 30").start();
        try {
            // not a fixed pause: on a loaded machine bash may not have opened the blob and exec'd sleep in 300 ms
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!holdsAsSleep(reader.pid(), blob) && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(holdsAsSleep(reader.pid(), blob), "the reader has the blob open as sleep 30");
            Run json = status("--json");
            assertEquals(0, json.exit(), json.err());
            JsonNode status = json.json();
            assertEquals(0, status.path("mounts").size(), "no mount");
            assertEquals(2, status.path("images").path("count").asInt());
            assertEquals(2, status.path("images").path("byFormat").path("raw").path("count").asInt(), json.out());
            assertTrue(status.path("images").path("filesystem").path("availableBytes").asLong() > 0);
            assertEquals(0, status.path("images").path("gcWouldFree").path("bytes").asLong());
            JsonNode user = status.path("inUse").get(0);
            assertEquals(image.digest().toString(), user.path("digest").asText(), json.out());
            assertTrue(user.path("command").asText().startsWith("sleep 30"), user.toString());

            Run text = status();
            assertEquals(0, text.exit(), text.err());
            assertTrue(text.out().contains("not mounted"), text.out());
            assertTrue(text.out().contains("images: 2 "), text.out());
            assertTrue(text.out().contains("app:1.0  pid " + reader.pid() + "  sleep 30"), text.out());
            assertTrue(text.out().contains("pulls and pushes in flight"), "says what is not built\n" + text.out());
        } finally {
            reader.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
    }

    /** Whether the process runs {@code sleep} (after bash's exec) with descriptor 3 on the blob. */
    private static boolean holdsAsSleep(long pid, Path blob) {
        try {
            return Files.readString(Path.of("/proc/" + pid + "/comm")).strip().equals("sleep")
                    && Files.readSymbolicLink(Path.of("/proc/" + pid + "/fd/3")).equals(blob.toRealPath());
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void aMountWhoseDaemonDoesNotAnswerIsReportedNotWaitedFor() throws Exception {
        try (ImageStore store = ImageStore.open(dir.resolve("store"));
             Closeable claim = store.claimMount(dir.resolve("mnt"))) {
            // the record says this process serves a mount; a socket that accepts but never writes stands for a stopped daemon
            Path socket = io.vimgfs.fs.ControlSocket.pathFor(store.root(), ProcessHandle.current().pid());
            Files.createDirectories(socket.getParent());
            try (java.nio.channels.ServerSocketChannel silent = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
                silent.bind(java.net.UnixDomainSocketAddress.of(socket));
                long start = System.nanoTime();
                Run text = status("--timeout", "0.5");
                long millis = (System.nanoTime() - start) / 1_000_000;
                assertEquals(1, text.exit(), "a daemon that does not answer is a failure for scripts\n" + text.out() + text.err());
                assertTrue(text.out().contains("DAEMON DOES NOT ANSWER within 0.5 s"), text.out());
                assertTrue(text.out().contains("images: 0 "), "the store's part still comes\n" + text.out());
                assertTrue(millis < 5000, "answered in " + millis + " ms");
            } finally {
                Files.deleteIfExists(socket);
            }
        }
    }

    @Test
    void aDirectoryThatIsNotAStoreIsAnError() {
        Run run = status();
        assertEquals(1, run.exit());
        assertTrue(run.err().contains("no vimgfs store at"), run.err());
        assertTrue(Files.notExists(dir.resolve("store")), "status never creates a store");
    }
}
