package io.vimgfs.fs;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Unit;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The daemon's numbers, in one Prometheus registry: FUSE requests by operation and result with
 * their latency, bytes read and written through the daemon, placements and refusals by reason,
 * the catalog's size and the open handles; and the last errors the mount answered with. The
 * registry is served at {@code /metrics} with {@code -o metrics=ADDR} ({@link MetricsServer}) and,
 * always, to {@code vimgfs status} over the {@link ControlSocket}.
 *
 * <p>One instance per process, like Prometheus' own default registry: libfuse's callbacks and
 * the upload code reach it without a reference threaded through every handler. The request path
 * costs two {@code nanoTime} calls and two adds on data points looked up once per operation.
 */
final class Metrics {
    private static final int RECENT_ERRORS = 20;
    /** FUSE requests take microseconds when cached and up to seconds when a placement hashes. */
    private static final double[] LATENCY_BOUNDS = {
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10};
    /** After the bounds: static fields are set in the order written. */
    private static final Metrics PROCESS = new Metrics();

    /** One error the mount answered with, for {@code vimgfs status}. */
    record RecentError(Instant time, String operation, String path, String errno) {
    }

    /** The data points of one FUSE operation, found once and then only added to. */
    private final class Operation {
        private final String name;
        private final CounterDataPoint ok;
        private final DistributionDataPoint latency;
        private final CounterDataPoint bytes;
        private final Map<Errno, CounterDataPoint> failed = new ConcurrentHashMap<>();

        private Operation(String name) {
            this.name = name;
            this.ok = requests.labelValues(name, "ok");
            this.latency = requestSeconds.labelValues(name);
            this.bytes = name.equals("read") ? bytesRead : name.equals("write") ? bytesWritten : null;
        }

        private void failed(Errno errno) {
            failed.computeIfAbsent(errno, e -> requests.labelValues(name, e.name())).inc();
        }
    }

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Counter requests = Counter.builder().name("vimgfs_fuse_requests_total")
            .help("FUSE requests answered, by operation and result (ok or the errno)")
            .labelNames("operation", "result").register(registry);
    private final Histogram requestSeconds = Histogram.builder().name("vimgfs_fuse_request_duration_seconds")
            .help("Time the daemon took to answer a FUSE request, by operation").unit(Unit.SECONDS)
            .labelNames("operation").classicOnly().classicUpperBounds(LATENCY_BOUNDS).register(registry);
    private final CounterDataPoint bytesRead = Counter.builder().name("vimgfs_read_bytes_total")
            .help("Bytes read through the daemon (images in -o data=fuse, uploads in incoming/)")
            .register(registry);
    private final CounterDataPoint bytesWritten = Counter.builder().name("vimgfs_written_bytes_total")
            .help("Bytes written through the daemon into incoming/").register(registry);
    private final Counter placements = Counter.builder().name("vimgfs_placements_total")
            .help("Uploads in incoming/ placed in the store").register(registry);
    private final Counter placedBytes = Counter.builder().name("vimgfs_placed_bytes_total")
            .help("Bytes of the uploads placed in the store").register(registry);
    private final Counter refusals = Counter.builder().name("vimgfs_refusals_total")
            .help("Uploads in incoming/ refused, by reason").labelNames("reason").register(registry);
    private final Map<String, Operation> operations = new ConcurrentHashMap<>();
    private final ArrayDeque<RecentError> recentErrors = new ArrayDeque<>();
    private final AtomicReference<Mounted> mounted = new AtomicReference<>();

    /** What the catalog and handle gauges read; set while a mount lives. */
    private record Mounted(ImageStore store, VimgFs fs) {
    }

    private Metrics() {
        GaugeWithCallback.builder().name("vimgfs_catalog_names").help("Names in the store's catalog")
                .callback(cb -> ifMounted(m -> cb.call(m.store().names().size()))).register(registry);
        GaugeWithCallback.builder().name("vimgfs_catalog_images").help("Images in the store's catalog")
                .callback(cb -> ifMounted(m -> cb.call(m.store().list().size()))).register(registry);
        GaugeWithCallback.builder().name("vimgfs_catalog_bytes").help("Bytes of the images in the store's catalog")
                .unit(Unit.BYTES)
                .callback(cb -> ifMounted(m -> cb.call(m.store().list().stream().mapToLong(ImageInfo::size).sum())))
                .register(registry);
        GaugeWithCallback.builder().name("vimgfs_open_handles")
                .help("Files open through the daemon (uploads, and images in -o data=fuse)")
                .callback(cb -> ifMounted(m -> cb.call(m.fs().openFiles()))).register(registry);
    }

    static Metrics process() {
        return PROCESS;
    }

    PrometheusRegistry registry() {
        return registry;
    }

    /** The catalog and handle gauges follow this mount until {@link #unwatch}. */
    void watch(ImageStore store, VimgFs fs) {
        mounted.set(new Mounted(store, fs));
    }

    void unwatch() {
        mounted.set(null);
    }

    private void ifMounted(java.util.function.Consumer<Mounted> read) {
        Mounted now = mounted.get();
        if (now != null) {
            read.accept(now);
        }
    }

    /** Counts one answered FUSE request; {@code result} is what libfuse gets (a byte count, 0 or -errno). */
    void request(String operation, long startNanos, int result, Errno errno, String path) {
        Operation op = operations.computeIfAbsent(operation, Operation::new);
        op.latency.observe((System.nanoTime() - startNanos) / 1e9);
        if (errno == null) {
            op.ok.inc();
            if (op.bytes != null && result > 0) {
                op.bytes.inc(result);
            }
            return;
        }
        op.failed(errno);
        if (errno != Errno.ENOENT && errno != Errno.ENODATA && errno != Errno.ENOSYS) { // routine: absent names, no xattrs
            remember(new RecentError(Instant.now(), operation, path, errno.name()));
        }
    }

    void placed(long bytes) {
        placements.inc();
        placedBytes.inc(bytes);
    }

    /** An upload refused; the reason is the failure's kind ({@code rejected}, {@code digest_mismatch}, …). */
    void refused(Throwable why) {
        refusals.labelValues(reasonOf(why)).inc();
    }

    static String reasonOf(Throwable why) {
        String kind = why.getClass().getSimpleName().replaceAll("(Exception|Error)$", "");
        return kind.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase(java.util.Locale.ROOT);
    }

    private void remember(RecentError error) {
        synchronized (recentErrors) {
            if (recentErrors.size() == RECENT_ERRORS) {
                recentErrors.removeFirst();
            }
            recentErrors.addLast(error);
        }
    }

    /** The last errors answered, oldest first. */
    List<RecentError> recentErrors() {
        synchronized (recentErrors) {
            return List.copyOf(recentErrors);
        }
    }
}
