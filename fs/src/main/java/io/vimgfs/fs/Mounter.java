package io.vimgfs.fs;

import io.vimgfs.nbd.LazyExports;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.StoreAudience;
import io.vimgfs.store.StoreOptions;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import ru.serce.jnrfuse.utils.MountUtils;

/**
 * Runs one mount in the foreground: checks the request, opens and claims the store, serves
 * FUSE until unmounted (fusermount -u, umount, SIGTERM, SIGINT), and then closes everything.
 */
public final class Mounter {
    private static final System.Logger LOG = System.getLogger(Mounter.class.getName());
    private static final long LAZY_SCAN_MILLIS = 100;
    private static final long REFRESH_MILLIS = 500;
    /** How often the mount writes last uses (the store writes at most once a minute) and checks -o prune_at. */
    private static final long HOUSEKEEPING_SECONDS = 10;
    private static final Duration LINK_MODE_GRACE = Duration.ofSeconds(5);
    private static final Duration FUSE_MODE_GRACE = Duration.ofSeconds(30);

    private Mounter() {
    }

    /** Why a mount cannot start, in words for the operator. */
    public static final class MountException extends IOException {
        public MountException(String message) {
            super(message);
        }
    }

    /** The checks that give a clear message before libfuse would give a vague one. */
    public static void preflight(MountRequest request) throws IOException {
        if (!Files.exists(Path.of("/dev/fuse"))) {
            throw new MountException("/dev/fuse is missing: load the fuse module (modprobe fuse) or, in a container,"
                    + " pass the device through (--device /dev/fuse)");
        }
        if (!Files.isReadable(Path.of("/dev/fuse")) || !Files.isWritable(Path.of("/dev/fuse"))) {
            throw new MountException("/dev/fuse is not accessible to this user: run as root, or install fuse3"
                    + " (fusermount3 is setuid) and add yourself to its group");
        }
        Path mountpoint = request.mountpoint();
        takeOverDeadMount(mountpoint);
        if (!Files.isDirectory(mountpoint)) {
            throw new MountException("mountpoint " + mountpoint + " does not exist or is not a directory: mkdir -p " + mountpoint);
        }
        String mounted = Mounts.typeAt(mountpoint);
        if (mounted != null) {
            throw new MountException("mountpoint " + mountpoint + " is busy: " + mounted + " is mounted there"
                    + ("fuse.vimgfs".equals(mounted) ? " (unmount it with fusermount -u " + mountpoint + ")" : ""));
        }
        if (!request.allowNonEmpty() && !Mounts.isEmptyDirectory(mountpoint)) {
            throw new MountException("mountpoint " + mountpoint + " is not empty: choose an empty directory"
                    + " (or pass -o nonempty to hide what is there)");
        }
        if (request.store().toString().contains(",")) {
            throw new MountException("store path " + request.store() + " contains a comma, which FUSE options cannot carry");
        }
        if (request.store().toAbsolutePath().normalize().startsWith(mountpoint.toAbsolutePath().normalize())) {
            throw new MountException("store " + request.store() + " is inside the mountpoint " + mountpoint);
        }
    }

    /**
     * A vimgfs mount whose daemon died ({@code kill -9}, an OOM kill, a crash) stays in the mount
     * table and answers ENOTCONN; it is unmounted (lazily) so that the next mount, systemd's
     * restart included, takes its place instead of failing on a mountpoint it cannot stat.
     */
    private static void takeOverDeadMount(Path mountpoint) {
        try {
            if (!"fuse.vimgfs".equals(Mounts.typeAt(mountpoint))) {
                return;
            }
            Files.readAttributes(mountpoint, java.nio.file.attribute.BasicFileAttributes.class);
        } catch (java.nio.file.FileSystemException e) {
            if (String.valueOf(e.getMessage()).contains("Transport endpoint is not connected")) {
                LOG.log(System.Logger.Level.WARNING, "unmounting " + mountpoint + ": a vimgfs mount whose daemon died was"
                        + " still there (Transport endpoint is not connected)");
                MountUtils.umount(mountpoint);
            }
        } catch (IOException e) {
            // not ours to judge: the checks below say what is wrong
        }
    }

    /**
     * Who may read the store's blobs follows who may use the mount: root alone without
     * allow_other, the {@code group=} with it, else every local user (QEMU opens the blobs itself).
     */
    private static StoreAudience audience(MountRequest request) {
        if (!request.allowOther()) {
            return new StoreAudience.Private();
        }
        return request.group().<StoreAudience>map(StoreAudience.Group::new).orElseGet(StoreAudience.Everyone::new);
    }

    /** Mounts and blocks until unmounted. Returns normally after a clean unmount. */
    public static void runForeground(MountRequest request) throws IOException {
        preflight(request);
        Path mountpoint = request.mountpoint().toAbsolutePath().normalize();
        StoreOptions options = StoreOptions.defaults().withMountRoots(Set.of(mountpoint)).withAudience(audience(request))
                .withEvents(Metrics.process());
        String fsName = request.store().toAbsolutePath().normalize().toString();
        CompletableFuture<FuseAdapter> binding = CompletableFuture.supplyAsync(
                () -> new FuseAdapter(fsName, Identity.uid(), Identity.gid()));
        CompletableFuture<FuseLoop> loop = CompletableFuture.supplyAsync(FuseLoop::new);
        try (ImageStore store = ImageStore.open(request.store(), options);
             Closeable claim = store.claimMount(mountpoint)) {
            int sealed = store.sealBlobs();
            if (sealed > 0) {
                LOG.log(System.Logger.Level.INFO, "made " + sealed + " blob(s) of an older store immutable, with their attributes");
            }
            int stale = store.removeStaleStaging().size();
            if (stale > 0) {
                LOG.log(System.Logger.Level.INFO, "removed " + stale + " staging file(s) left by interrupted uploads");
            }
            long opened = uptimeMillis();
            VimgFs fs = new VimgFs(store, Clock.systemUTC(), request.dataMode());
            FuseAdapter adapter = binding.join().serve(fs);
            Closeable watched = watch(store, fs, request, mountpoint);
            long bound = uptimeMillis();
            ScheduledExecutorService watcher = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread thread = new Thread(r, "vimgfs-store-watcher");
                thread.setDaemon(true);
                return thread;
            });
            watcher.scheduleWithFixedDelay(() -> refresh(store), REFRESH_MILLIS, REFRESH_MILLIS, TimeUnit.MILLISECONDS);
            // readers hold the store's blob files, not the mount's: only /proc tells when they close
            watcher.scheduleWithFixedDelay(() -> collectClosed(store), 2, 2, TimeUnit.SECONDS);
            watcher.scheduleWithFixedDelay(() -> countActivity(store), 0, 2, TimeUnit.SECONDS);
            Closeable nbd = serveNbd(store, watcher);
            Housekeeping housekeeping = new Housekeeping(store, request.pruneWatermarks());
            watcher.scheduleWithFixedDelay(housekeeping, HOUSEKEEPING_SECONDS, HOUSEKEEPING_SECONDS, TimeUnit.SECONDS);
            CountDownLatch finished = new CountDownLatch(1);
            AtomicBoolean live = new AtomicBoolean();
            AtomicBoolean stopping = new AtomicBoolean();
            Thread onSignal = new Thread(() -> {
                stopping.set(true);
                if (live.get()) {
                    MountUtils.umount(mountpoint); // lazy unmount: the workers see ENODEV and stop
                    LOG.log(System.Logger.Level.INFO, "stopping: unmounted " + mountpoint + " lazily ("
                            + fs.openFiles() + " file(s) open through the daemon)");
                }
                // With links nothing but new lookups and uploads depend on the daemon, so it exits
                // promptly (systemctl restart); with data=fuse it serves open images a while longer.
                Duration grace = fs.mode() == DataMode.LINK ? LINK_MODE_GRACE : FUSE_MODE_GRACE;
                if (!awaitQuietly(finished, grace)) {
                    LOG.log(System.Logger.Level.WARNING, "exiting while " + mountpoint + " is still in use ("
                            + fs.openFiles() + " file(s) open through the daemon); uploads not yet closed are dropped"
                            + (fs.mode() == DataMode.LINK ? "; images open by readers stay readable" : ""));
                }
            }, "vimgfs-unmount-on-signal");
            Runtime.getRuntime().addShutdownHook(onSignal);
            List<String> args = List.of("-o", String.join(",", request.fuseOptions()));
            LOG.log(System.Logger.Level.INFO, "mounting " + store.root() + " at " + mountpoint + " with " + args.get(1));
            try {
                loop.join().run(adapter, mountpoint, args, request.debug(), request.threads(), () -> {
                    live.set(true);
                    if (stopping.get()) { // a signal came while mounting: undo the mount at once
                        watcher.execute(() -> MountUtils.umount(mountpoint));
                    }
                    // after the kernel has taken libfuse's INIT reply, which sets the window itself
                    watcher.schedule(() -> widenReadahead(mountpoint, request.readaheadKib()), 300, TimeUnit.MILLISECONDS);
                    LOG.log(System.Logger.Level.INFO, "mounted " + store.names().size() + " names at " + mountpoint
                            + " " + uptimeMillis() + " ms after start (store open at " + opened + " ms, FUSE bound at "
                            + bound + " ms)");
                });
            } catch (IllegalStateException e) {
                throw new MountException(e.getMessage());
            } finally {
                watcher.shutdownNow();
                housekeeping.flush();
                closeQuietly(nbd);
                closeQuietly(watched);
                fs.close();
                if (live.get()) {
                    LOG.log(System.Logger.Level.INFO, "unmounted " + mountpoint);
                }
                finished.countDown();
                removeHook(onSignal);
            }
        }
    }

    /**
     * What lets an operator watch the mount: the status socket (always) and the metrics
     * endpoint ({@code -o metrics=ADDR}). A metrics address in use fails the mount, as a busy
     * mountpoint does; a socket that cannot be made only warns.
     */
    private static Closeable watch(ImageStore store, VimgFs fs, MountRequest request, Path mountpoint) throws IOException {
        Metrics metrics = Metrics.process();
        metrics.watch(store, fs);
        Instant started = ProcessHandle.current().info().startInstant().orElse(Instant.now());
        DaemonReport report = new DaemonReport(mountpoint, request, fs, metrics, started);
        MetricsServer server = null;
        if (request.metricsAddress().isPresent()) {
            InetSocketAddress address = request.metricsAddress().get();
            try {
                server = MetricsServer.start(metrics, address);
            } catch (IOException e) {
                metrics.unwatch();
                throw new MountException("cannot serve metrics at " + address.getHostString() + ":" + address.getPort()
                        + " (-o metrics=): " + e.getMessage());
            }
            String url = "http://" + address.getHostString() + ":" + server.port() + "/metrics";
            report.metricsServedAt(url);
            LOG.log(System.Logger.Level.INFO, "serving metrics at " + url);
        }
        ControlSocket socket = ControlSocket.serve(store.root(), report::json);
        MetricsServer served = server;
        return () -> {
            metrics.unwatch();
            if (socket != null) {
                socket.close();
            }
            if (served != null) {
                served.close();
            }
        };
    }

    /**
     * The store's images and lazy pulls over NBD ({@link LazyExports}), its lazy pulls looked for
     * on the watcher's timer. A socket that cannot be made only warns: the mount works without it.
     */
    private static Closeable serveNbd(ImageStore store, ScheduledExecutorService watcher) {
        try {
            LazyExports exports = LazyExports.start(store);
            // a lazy pull waits for the mount to take it up: look often (one readdir of .vimgfs/)
            watcher.scheduleWithFixedDelay(exports::scan, LAZY_SCAN_MILLIS, LAZY_SCAN_MILLIS, TimeUnit.MILLISECONDS);
            Metrics.process().watchLazy(exports::stats);
            LOG.log(System.Logger.Level.INFO, "serving the store's images over NBD at " + exports.server().socket());
            return exports;
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot serve NBD (lazy pulls will wait): " + e.getMessage());
            return () -> { };
        }
    }

    private static void closeQuietly(Closeable closeable) {
        try {
            closeable.close();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot close cleanly: " + e.getMessage());
        }
    }

    /**
     * FUSE mounts start with a 128 KiB readahead window, so a cold sequential read has one
     * request in flight at a time; a wider window keeps several of the worker threads busy.
     * Set through sysfs (root only; otherwise left as it is).
     */
    private static void widenReadahead(Path mountpoint, int kib) {
        try {
            String device = Mounts.deviceAt(mountpoint);
            Path setting = Path.of("/sys/class/bdi", device, "read_ahead_kb");
            if (device != null && Files.isWritable(setting)) {
                Files.writeString(setting, Integer.toString(kib));
            }
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, () -> "readahead left at its default: " + e.getMessage());
        }
    }

    private static long uptimeMillis() {
        return java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime();
    }

    private static void collectClosed(ImageStore store) {
        try {
            int collected = store.collectClosed();
            if (collected > 0) {
                LOG.log(System.Logger.Level.INFO, "removed " + collected + " nameless image(s) nothing keeps any more (closed by their last reader)");
            }
        } catch (Throwable e) {
            LOG.log(System.Logger.Level.WARNING, "collecting blobs of removed images: " + e.getMessage());
        }
    }

    /** The command line's pulls, pushes, gc and prune runs, into this mount's metrics. */
    private static void countActivity(ImageStore store) {
        try {
            Activity.removeExpired(store.root());
            Metrics.process().countActivity(Activity.read(store.root()));
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "counting the store's pulls, pushes and gc runs: " + e.getMessage());
        }
    }

    private static void refresh(ImageStore store) {
        try {
            store.refresh();
        } catch (Throwable e) {
            LOG.log(System.Logger.Level.WARNING, "rereading the store's index: " + e.getMessage());
        }
    }

    private static boolean awaitQuietly(CountDownLatch latch, Duration limit) {
        try {
            return latch.await(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void removeHook(Thread hook) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // already shutting down: the hook is running and waits for us
        }
    }
}
