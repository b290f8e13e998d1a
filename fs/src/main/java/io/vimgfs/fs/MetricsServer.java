package io.vimgfs.fs;

import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;

/**
 * The {@code /metrics} endpoint of {@code -o metrics=ADDR}: Prometheus text (and the other
 * formats a scraper asks for) from {@link Metrics}' registry, plus the JVM's own metrics, which
 * are registered only here so that a mount without the endpoint does not pay for them.
 */
final class MetricsServer implements Closeable {
    private static boolean jvmRegistered;
    private final HTTPServer server;

    private MetricsServer(HTTPServer server) {
        this.server = server;
    }

    static MetricsServer start(Metrics metrics, InetSocketAddress address) throws IOException {
        synchronized (MetricsServer.class) {
            if (!jvmRegistered) {
                JvmMetrics.builder().register(metrics.registry());
                jvmRegistered = true;
            }
        }
        HTTPServer server = HTTPServer.builder()
                .hostname(address.getHostString())
                .port(address.getPort())
                .registry(metrics.registry())
                .buildAndStart();
        return new MetricsServer(server);
    }

    int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        server.close();
    }
}
