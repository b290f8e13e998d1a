package io.vimgfs.nativetest;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP proxy on 127.0.0.1 in front of a loopback server: every connection is forwarded as is,
 * the answers slowed to about {@code bytesPerSecond} per connection and counted, so a test can
 * stop a client mid-download and tell how many bytes it was sent.
 */
final class ThrottlingProxy implements AutoCloseable {
    private static final int CHUNK = 64 * 1024;

    private final ServerSocket listener;
    private final int upstreamPort;
    private final long nanosPerChunk;
    private final AtomicLong sent = new AtomicLong();

    ThrottlingProxy(int upstreamPort, long bytesPerSecond) throws IOException {
        this.listener = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
        this.upstreamPort = upstreamPort;
        this.nanosPerChunk = 1_000_000_000L * CHUNK / bytesPerSecond;
        Thread acceptor = new Thread(this::accept, "proxy-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    int port() {
        return listener.getLocalPort();
    }

    /** Bytes sent to clients so far (headers, manifests and blobs). */
    long bytesSent() {
        return sent.get();
    }

    private void accept() {
        while (!listener.isClosed()) {
            try {
                Socket client = listener.accept();
                Socket upstream = new Socket(InetAddress.getByName("127.0.0.1"), upstreamPort);
                pump(client.getInputStream(), upstream.getOutputStream(), client, upstream, false);
                pump(upstream.getInputStream(), client.getOutputStream(), client, upstream, true);
            } catch (IOException e) {
                // closed, or the upstream refused: the client sees its connection drop
            }
        }
    }

    private void pump(InputStream from, OutputStream to, Socket a, Socket b, boolean downstream) {
        Thread thread = new Thread(() -> {
            byte[] buffer = new byte[CHUNK];
            try {
                long next = System.nanoTime();
                for (int n; (n = from.read(buffer)) > 0; ) {
                    to.write(buffer, 0, n);
                    if (downstream) {
                        sent.addAndGet(n);
                        next += nanosPerChunk * n / CHUNK;
                        long wait = next - System.nanoTime();
                        if (wait > 0) {
                            Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                        }
                    }
                }
            } catch (IOException | InterruptedException e) {
                // one side closed
            } finally {
                closeQuietly(a);
                closeQuietly(b);
            }
        }, "proxy-pump");
        thread.setDaemon(true);
        thread.start();
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException e) {
            // already closed
        }
    }

    @Override
    public void close() throws IOException {
        listener.close();
    }
}
