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
import io.vimgfs.store.StoreEvents;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The daemon's numbers, in one Prometheus registry: FUSE requests by operation and result with
 * their latency, bytes read and written through the daemon, placements and refusals by reason,
 * the catalog's size and the open handles, the store's journal and index writes and what it
 * deleted, and the pulls, pushes, gc and prune runs of the command line ({@link Activity}, counted
 * by {@link #countActivity}); and the last errors the mount answered with. The
 * registry is served at {@code /metrics} with {@code -o metrics=ADDR} ({@link MetricsServer}) and,
 * always, to {@code vimgfs status} over the {@link ControlSocket}.
 *
 * <p>One instance per process, like Prometheus' own default registry: libfuse's callbacks and
 * the upload code reach it without a reference threaded through every handler. The request path
 * costs two {@code nanoTime} calls and two adds on data points looked up once per operation.
 */
final class Metrics implements StoreEvents {
    private static final int RECENT_ERRORS = 20;
    /** FUSE requests take microseconds when cached and up to seconds when a placement hashes. */
    private static final double[] LATENCY_BOUNDS = {
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10};
    /** A journal frame's fsync takes a millisecond or so; index.json of 100,000 names, up to seconds. */
    private static final double[] WRITE_BOUNDS = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25, 0.5, 1, 2.5, 10};
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
    private final Histogram journalSeconds = Histogram.builder().name("vimgfs_journal_append_duration_seconds")
            .help("Time to write and fsync one journal frame (a commit of name changes)").unit(Unit.SECONDS)
            .classicOnly().classicUpperBounds(WRITE_BOUNDS).register(registry);
    private final Histogram indexSeconds = Histogram.builder().name("vimgfs_index_write_duration_seconds")
            .help("Time to rewrite index.json (write, fsync, rename, fsync its directory)").unit(Unit.SECONDS)
            .classicOnly().classicUpperBounds(WRITE_BOUNDS).register(registry);
    private final Counter pulls = Counter.builder().name("vimgfs_pulls_total")
            .help("vimgfs pull runs that ended, by result (ok, failed, killed)").labelNames("result").register(registry);
    private final CounterDataPoint pulledBytes = Counter.builder().name("vimgfs_pulled_bytes_total")
            .help("Bytes vimgfs pull transferred (a layer already stored transfers nothing)").unit(Unit.BYTES)
            .register(registry);
    private final Counter pushes = Counter.builder().name("vimgfs_pushes_total")
            .help("vimgfs push runs that ended, by result (ok, failed, killed)").labelNames("result").register(registry);
    private final CounterDataPoint pushedBytes = Counter.builder().name("vimgfs_pushed_bytes_total")
            .help("Bytes vimgfs push uploaded").unit(Unit.BYTES).register(registry);
    private final Counter gcRuns = Counter.builder().name("vimgfs_gc_runs_total")
            .help("Collections that deleted something: vimgfs gc (origin command), or the mount's own after a last"
                    + " name went or a reader closed (origin mount)").labelNames("origin").register(registry);
    private final Counter gcFreed = Counter.builder().name("vimgfs_gc_freed_bytes_total")
            .help("Bytes of blobs and staging files deleted, by origin").unit(Unit.BYTES).labelNames("origin")
            .register(registry);
    private final Counter pruneRuns = Counter.builder().name("vimgfs_prune_runs_total")
            .help("Prune runs (not dry): vimgfs prune (origin command) or -o prune_at (origin mount)")
            .labelNames("origin").register(registry);
    private final Counter pruneFreed = Counter.builder().name("vimgfs_prune_freed_bytes_total")
            .help("Bytes of the images prune removed, by origin").unit(Unit.BYTES).labelNames("origin").register(registry);
    private final Map<String, Operation> operations = new ConcurrentHashMap<>();
    /** The runs already counted (by id); those older than this process's start are never counted. */
    private final java.util.Set<String> counted = ConcurrentHashMap.newKeySet();
    private final long startedMillis = System.currentTimeMillis();
    private volatile List<Activity.Run> inFlight = List.of();
    private final ArrayDeque<RecentError> recentErrors = new ArrayDeque<>();
    private final AtomicReference<Mounted> mounted = new AtomicReference<>();
    /** The mount's lazy pulls, as its NBD export has them. */
    private volatile java.util.function.Supplier<List<io.vimgfs.store.registry.LazyDisk.Stats>> lazy = List::of;

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
        GaugeWithCallback.builder().name("vimgfs_lazy_size_bytes").help("Size of each disk a lazy pull is fetching or"
                + " fetched, by digest").unit(Unit.BYTES).labelNames("digest")
                .callback(cb -> lazy.get().forEach(s -> cb.call(s.size(), s.layer().toString()))).register(registry);
        GaugeWithCallback.builder().name("vimgfs_lazy_present_bytes").help("Bytes of each lazily pulled disk that are"
                + " here and verified (fetched, or zero chunks), by digest").unit(Unit.BYTES).labelNames("digest")
                .callback(cb -> lazy.get().forEach(s -> cb.call(s.bytesHere(), s.layer().toString()))).register(registry);
        GaugeWithCallback.builder().name("vimgfs_lazy_fetched_bytes").help("Bytes a lazy pull fetched since the mount"
                + " started, by digest and by how (demand: for a read waiting on them; background)").unit(Unit.BYTES)
                .labelNames("digest", "how").callback(cb -> lazy.get().forEach(s -> {
                    cb.call(s.onDemand(), s.layer().toString(), "demand");
                    cb.call(s.background(), s.layer().toString(), "background");
                })).register(registry);
        GaugeWithCallback.builder().name("vimgfs_lazy_chunk_failures").help("Chunks a lazy pull fetched that did not"
                + " match their digest in the chunk index (never served), by digest").labelNames("digest")
                .callback(cb -> lazy.get().forEach(s -> cb.call(s.failures(), s.layer().toString()))).register(registry);
        GaugeWithCallback.builder().name("vimgfs_open_handles")
                .help("Files open through the daemon (uploads, and images in -o data=fuse)")
                .callback(cb -> ifMounted(m -> cb.call(m.fs().openFiles()))).register(registry);
        GaugeWithCallback.builder().name("vimgfs_transfers_in_flight")
                .help("vimgfs pull and push runs going on now, by verb").labelNames("verb")
                .callback(cb -> {
                    List<Activity.Run> now = inFlight;
                    for (String verb : List.of("pull", "push")) {
                        cb.call(now.stream().filter(r -> r.verb().equals(verb)).count(), verb);
                    }
                }).register(registry);
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
        lazy = List::of;
    }

    /** The lazy pull gauges and the status report follow these disks until {@link #unwatch}. */
    void watchLazy(java.util.function.Supplier<List<io.vimgfs.store.registry.LazyDisk.Stats>> disks) {
        lazy = disks;
    }

    List<io.vimgfs.store.registry.LazyDisk.Stats> lazyPulls() {
        return lazy.get();
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
        if (errno != Errno.ENOENT && errno != Errno.ENODATA && errno != Errno.ENOSYS
                && errno != Errno.EOPNOTSUPP) { // routine: absent names, no xattrs, cp's hole punching
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

    @Override
    public void journalAppended(long nanos, int changes) {
        journalSeconds.observe(nanos / 1e9);
    }

    @Override
    public void indexWritten(long nanos, int bytes) {
        indexSeconds.observe(nanos / 1e9);
    }

    @Override
    public void deleted(int files, long bytes) {
        gcRuns.labelValues("mount").inc();
        gcFreed.labelValues("mount").inc(bytes);
    }

    /** A prune the mount ran itself ({@code -o prune_at}). */
    void pruned(String origin, long bytes) {
        pruneRuns.labelValues(origin).inc();
        pruneFreed.labelValues(origin).inc(bytes);
    }

    /**
     * Counts each command-line run that ended since this process started, once; a run whose
     * process died before it said how it ended counts as {@code killed}. Remembers what is in
     * flight for the gauge.
     */
    void countActivity(List<Activity.Run> runs) {
        List<Activity.Run> running = new java.util.ArrayList<>();
        java.util.Set<String> present = new java.util.HashSet<>();
        for (Activity.Run run : runs) {
            present.add(run.id());
            boolean orphaned = run.orphaned();
            if (run.state() == Activity.State.RUNNING && !orphaned) {
                running.add(run);
                continue;
            }
            if (run.updatedMillis() < startedMillis || !counted.add(run.id())) {
                continue;
            }
            String result = orphaned ? "killed" : run.state() == Activity.State.OK ? "ok" : "failed";
            switch (run.verb()) {
                case "pull" -> {
                    pulls.labelValues(result).inc();
                    pulledBytes.inc(run.bytes());
                }
                case "push" -> {
                    pushes.labelValues(result).inc();
                    pushedBytes.inc(run.bytes());
                }
                case "gc" -> {
                    gcRuns.labelValues("command").inc();
                    gcFreed.labelValues("command").inc(run.bytes());
                }
                case "prune" -> pruned("command", run.bytes());
                default -> { } // a verb a newer vimgfs records
            }
        }
        counted.retainAll(present); // a run's file is deleted once; its id is not needed after
        inFlight = List.copyOf(running);
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
