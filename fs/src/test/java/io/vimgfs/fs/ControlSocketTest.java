package io.vimgfs.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The status socket: a live daemon answers, a hung one is reported within the timeout, none is said plainly. */
class ControlSocketTest {
    @TempDir
    Path store;

    @Test
    void aLiveDaemonAnswersWithItsReport() throws IOException {
        try (ControlSocket socket = ControlSocket.serve(store, () -> "{\"pid\":1}")) {
            Path path = ControlSocket.pathFor(store, ProcessHandle.current().pid());
            ControlSocket.Answer answer = ControlSocket.ask(path, Duration.ofSeconds(5));
            assertEquals("{\"pid\":1}", assertInstanceOf(ControlSocket.Answer.Report.class, answer).json());
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(path)),
                    "only the daemon's user may ask: the report names paths and command lines");
        }
        assertTrue(Files.notExists(ControlSocket.pathFor(store, ProcessHandle.current().pid())), "closing removes the socket");
    }

    @Test
    void aDaemonThatDoesNotAnswerIsReportedWithinTheTimeout() throws IOException {
        CountDownLatch never = new CountDownLatch(1);
        try (ControlSocket socket = ControlSocket.serve(store, () -> {
            try {
                never.await(); // a stopped daemon: the connection is accepted by the kernel, nothing comes
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return "{}";
        })) {
            long start = System.nanoTime();
            ControlSocket.Answer answer = ControlSocket.ask(ControlSocket.pathFor(store, ProcessHandle.current().pid()),
                    Duration.ofMillis(300));
            long millis = (System.nanoTime() - start) / 1_000_000;
            assertInstanceOf(ControlSocket.Answer.Silent.class, answer);
            assertTrue(millis < 2000, "gave up after " + millis + " ms");
        } finally {
            never.countDown();
        }
    }

    @Test
    void noSocketIsAbsentAndAStaleOneIsRefused() throws IOException {
        Path path = ControlSocket.pathFor(store, 999_999_999L);
        assertInstanceOf(ControlSocket.Answer.Absent.class, ControlSocket.ask(path, Duration.ofSeconds(1)));
        Files.createDirectories(path.getParent());
        Files.createFile(path); // left by a crashed daemon: not a socket anyone listens on
        assertInstanceOf(ControlSocket.Answer.Absent.class, ControlSocket.ask(path, Duration.ofSeconds(1)));
    }
}
