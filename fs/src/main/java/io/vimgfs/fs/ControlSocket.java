package io.vimgfs.fs;

import io.vimgfs.store.StoreDirectory;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The unix socket a mount answers {@code vimgfs status} on: {@code STORE/.vimgfs/control/PID.sock},
 * owner-only. A client connects and reads one report (JSON) until the daemon closes; it sends
 * nothing, so no client can make the daemon wait. The client side ({@link #ask}) gives up after a
 * timeout, which is how {@code status} tells a hung or stopped daemon from a live one.
 */
public final class ControlSocket implements Closeable {
    private static final System.Logger LOG = System.getLogger(ControlSocket.class.getName());

    private final Path path;
    private final ServerSocketChannel server;
    private final Thread acceptor;

    /** What a daemon said, or that it said nothing in time. */
    public sealed interface Answer {
        /** The daemon's report, and how long it took to come. */
        record Report(String json, Duration took) implements Answer {
        }

        /** Connected (or tried to), but nothing came within the timeout: the daemon is hung or stopped. */
        record Silent(Duration waited) implements Answer {
        }

        /** No socket to talk to: an older daemon, a store path too long for a unix socket, or gone. */
        record Absent(String why) implements Answer {
        }
    }

    private ControlSocket(Path path, ServerSocketChannel server, Supplier<String> report) {
        this.path = path;
        this.server = server;
        this.acceptor = new Thread(() -> acceptLoop(report), "vimgfs-control");
        acceptor.setDaemon(true);
    }

    /** Where the daemon with this pid listens. */
    public static Path pathFor(Path storeRoot, long pid) {
        return StoreDirectory.of(storeRoot).workFile("control").resolve(pid + ".sock");
    }

    /**
     * Listens for this process; returns null (after a warning) when the socket cannot be made,
     * since a mount without a status socket still serves its images.
     */
    static ControlSocket serve(Path storeRoot, Supplier<String> report) {
        Path path = pathFor(storeRoot, ProcessHandle.current().pid());
        try {
            Files.createDirectories(path.getParent(), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            removeDeadSockets(path.getParent());
            Files.deleteIfExists(path);
            ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                server.bind(UnixDomainSocketAddress.of(path));
                Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
            } catch (IOException | RuntimeException e) {
                server.close();
                throw e;
            }
            ControlSocket socket = new ControlSocket(path, server, report);
            socket.acceptor.start();
            return socket;
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "no status socket at " + path + " (vimgfs status will say the daemon"
                    + " has none): " + e.getMessage());
            return null;
        }
    }

    private static void removeDeadSockets(Path dir) throws IOException {
        try (Stream<Path> sockets = Files.list(dir)) {
            for (Path socket : sockets.toList()) {
                String name = socket.getFileName().toString();
                if (name.matches("[0-9]+\\.sock")
                        && ProcessHandle.of(Long.parseLong(name.substring(0, name.length() - 5))).isEmpty()) {
                    Files.deleteIfExists(socket);
                }
            }
        }
    }

    private void acceptLoop(Supplier<String> report) {
        while (server.isOpen()) {
            try {
                SocketChannel client = server.accept();
                // one short thread per client: a client that never reads cannot hold up the next
                Thread answer = new Thread(() -> answer(client, report), "vimgfs-control-answer");
                answer.setDaemon(true);
                answer.start();
            } catch (IOException e) {
                if (server.isOpen()) {
                    LOG.log(System.Logger.Level.WARNING, "status socket: " + e.getMessage());
                }
                return;
            }
        }
    }

    private static void answer(SocketChannel client, Supplier<String> report) {
        try (client) {
            ByteBuffer bytes = ByteBuffer.wrap(report.get().getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                client.write(bytes);
            }
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, () -> "status socket client: " + e.getMessage());
        }
    }

    /** Asks the daemon listening at {@code socket} for its report, waiting at most {@code timeout}. */
    public static Answer ask(Path socket, Duration timeout) {
        if (!Files.exists(socket)) {
            return new Answer.Absent("no status socket at " + socket);
        }
        long start = System.nanoTime();
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        } catch (IOException e) {
            return new Answer.Absent("cannot open a unix socket: " + e.getMessage());
        }
        // connect and read block without a timeout of their own; closing the channel ends both
        CompletableFuture<String> reading = CompletableFuture.supplyAsync(() -> {
            try {
                channel.connect(UnixDomainSocketAddress.of(socket));
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
                while (channel.read(buffer) >= 0) {
                    out.write(buffer.array(), 0, buffer.position());
                    buffer.clear();
                }
                return out.toString(StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, command -> {
            Thread thread = new Thread(command, "vimgfs-status-ask");
            thread.setDaemon(true);
            thread.start();
        });
        try {
            String json = reading.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return new Answer.Report(json, Duration.ofNanos(System.nanoTime() - start));
        } catch (TimeoutException e) {
            return new Answer.Silent(Duration.ofNanos(System.nanoTime() - start));
        } catch (ExecutionException e) {
            return new Answer.Absent("the status socket refused: " + e.getCause().getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Answer.Silent(Duration.ofNanos(System.nanoTime() - start));
        } finally {
            try {
                channel.close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.DEBUG, () -> "closing the status socket: " + e.getMessage());
            }
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        Files.deleteIfExists(path);
    }
}
