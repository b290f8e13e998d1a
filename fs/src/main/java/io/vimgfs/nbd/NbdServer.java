package io.vimgfs.nbd;

import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A read-only NBD server (fixed newstyle, protocol as in NBD's {@code proto.md}) on a unix socket:
 * the listening socket, and one {@link NbdConnection} per client. QEMU connects to it with
 * {@code nbd+unix:///EXPORT?socket=PATH}, or a {@code json:} backing with {@code reconnect-delay}
 * so that a restart of this server pauses the VM's reads instead of failing them.
 */
public final class NbdServer implements Closeable {
    private static final System.Logger LOG = System.getLogger(NbdServer.class.getName());

    /** The exports by name, asked at each connection (so new ones are served without a restart). */
    public interface Exports {
        Optional<NbdExport> find(String name);

        List<String> names();
    }

    private final Path socket;
    private final ServerSocketChannel listener;
    private final Exports exports;
    private final ExecutorService threads;
    private final Set<NbdConnection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicInteger served = new AtomicInteger();

    private NbdServer(Path socket, ServerSocketChannel listener, Exports exports) {
        this.socket = socket;
        this.listener = listener;
        this.exports = exports;
        AtomicInteger n = new AtomicInteger();
        this.threads = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "nbd-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /** Listens on {@code socket} (a stale socket file left by a killed server is replaced). */
    public static NbdServer start(Path socket, Exports exports) throws IOException {
        Files.createDirectories(socket.getParent());
        Files.deleteIfExists(socket);
        ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            listener.bind(UnixDomainSocketAddress.of(socket), 64);
        } catch (IOException e) {
            listener.close();
            throw new IOException("cannot listen on " + socket + ": " + e.getMessage(), e);
        }
        NbdServer server = new NbdServer(socket, listener, exports);
        server.threads.execute(server::accept);
        return server;
    }

    public Path socket() {
        return socket;
    }

    /** Clients connected now. */
    public int connections() {
        return connections.size();
    }

    /** Clients that have connected since the start. */
    public int served() {
        return served.get();
    }

    private void accept() {
        while (listener.isOpen()) {
            SocketChannel client;
            try {
                client = listener.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "nbd: accept on " + socket + " failed: " + e.getMessage());
                continue;
            }
            NbdConnection connection = new NbdConnection(client, exports, threads);
            connections.add(connection);
            served.incrementAndGet();
            threads.execute(() -> {
                try {
                    connection.run();
                } finally {
                    connections.remove(connection);
                }
            });
        }
    }

    @Override
    public void close() throws IOException {
        listener.close();
        for (NbdConnection connection : connections) {
            connection.close();
        }
        threads.shutdownNow();
        Files.deleteIfExists(socket);
    }
}
