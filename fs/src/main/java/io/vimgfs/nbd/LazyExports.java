package io.vimgfs.nbd;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.LazyPulls;
import io.vimgfs.store.StoreDirectory;
import io.vimgfs.store.registry.CredentialLookup;
import io.vimgfs.store.registry.LazyDisk;
import io.vimgfs.store.registry.RegistryClient;
import io.vimgfs.store.registry.RegistryReference;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * What a mount serves over NBD on {@code STORE/.vimgfs/nbd.sock}, by digest ({@code sha256:<hex>}):
 * every lazy pull of its store, and every stored image. It owns the open {@link LazyDisk}s: each
 * lazy pull the store records is opened at {@link #scan} (the mount's timer) and filled in the
 * background; a fill that fails (a registry down, a chunk that does not match) is tried again
 * after {@link #RETRY_AFTER}, while reads still fetch what they need. A placed disk stays open so
 * the VMs reading through it keep their export.
 */
public final class LazyExports implements NbdServer.Exports, Closeable {
    private static final System.Logger LOG = System.getLogger(LazyExports.class.getName());
    static final String SOCKET = "nbd.sock";
    static final Duration RETRY_AFTER = Duration.ofSeconds(5);

    private final ImageStore store;
    private final Clock clock;
    private final Map<Digest, LazyDisk> disks = new ConcurrentHashMap<>();
    private final Map<Digest, Instant> retryAt = new ConcurrentHashMap<>();
    private final Map<Digest, Boolean> filling = new ConcurrentHashMap<>();
    private final ExecutorService fillers = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "vimgfs-lazy-fill");
        t.setDaemon(true);
        return t;
    });
    private NbdServer server;

    private LazyExports(ImageStore store, Clock clock) {
        this.store = store;
        this.clock = clock;
    }

    /** The socket a store's mount serves NBD on. */
    public static Path socketOf(Path storeRoot) {
        return StoreDirectory.of(storeRoot).workFile(SOCKET);
    }

    /** Serves the store's images and lazy pulls, the ones recorded now opened at once. */
    public static LazyExports start(ImageStore store) throws IOException {
        LazyExports exports = new LazyExports(store, Clock.systemUTC());
        exports.openRecorded(); // before the socket: a QEMU reconnecting to a restarted mount finds its export
        exports.server = NbdServer.start(socketOf(store.root()), exports);
        exports.scan();
        return exports;
    }

    public NbdServer server() {
        return server;
    }

    /** Opens the lazy pulls not open yet, and starts the fills that are due. */
    public void scan() {
        openRecorded();
        disks.forEach((layer, disk) -> {
            if (!disk.stats().placed() && due(layer) && filling.putIfAbsent(layer, true) == null) {
                fillers.execute(() -> fill(layer, disk));
            }
        });
    }

    private void openRecorded() {
        try {
            LazyPulls pulls = store.directory().lazyPulls();
            for (Digest layer : pulls.layers()) { // names only: a record (its index) is read once, to open it
                if (!disks.containsKey(layer) && due(layer)) {
                    Optional<LazyPulls.Pull> pull = pulls.find(layer);
                    if (pull.isPresent()) {
                        open(pull.get());
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot read the store's lazy pulls: " + e.getMessage());
        }
    }

    private boolean due(Digest layer) {
        Instant at = retryAt.get(layer);
        return at == null || !clock.instant().isBefore(at);
    }

    private void open(LazyPulls.Pull pull) {
        try {
            RegistryReference source = RegistryReference.parse(pull.source());
            RegistryClient client = RegistryClient.forRegistry(source, RegistryClient.Options.defaults(pull.tlsVerify()),
                    CredentialLookup.forProcess(Optional.empty(), Optional.empty()));
            disks.put(pull.layer(), LazyDisk.open(store, pull, client, source.repository(), pull.source()));
            LOG.log(System.Logger.Level.INFO, "serving the lazy pull of " + pull.name() + " (" + pull.layer() + ") over NBD");
        } catch (io.vimgfs.store.ImageRejectedException | io.vimgfs.store.DigestMismatchException e) {
            retryAt.put(pull.layer(), Instant.MAX); // what it fetched is not what its manifest says: never served
            LOG.log(System.Logger.Level.ERROR, "the lazy pull of " + pull.name() + " is refused: " + e.getMessage());
        } catch (IOException | RuntimeException e) {
            retryAt.put(pull.layer(), clock.instant().plus(RETRY_AFTER));
            LOG.log(System.Logger.Level.WARNING, "cannot open the lazy pull of " + pull.name() + ": " + e.getMessage());
        }
    }

    private void fill(Digest layer, LazyDisk disk) {
        try {
            disk.fill();
            retryAt.remove(layer);
        } catch (IOException | RuntimeException e) {
            if (disk.refusal().isPresent()) {
                retryAt.put(layer, Instant.MAX); // the whole disk is not what the manifest says: never placed
                LOG.log(System.Logger.Level.ERROR, "the lazy pull of " + layer + " is refused: " + disk.refusal().get());
                return;
            }
            retryAt.put(layer, clock.instant().plus(RETRY_AFTER));
            LOG.log(System.Logger.Level.WARNING, "the lazy pull of " + layer + " stopped (tried again in "
                    + RETRY_AFTER.toSeconds() + " s): " + e.getMessage());
        } finally {
            filling.remove(layer);
        }
    }

    /** Each lazy disk's progress, for status and metrics. */
    public List<LazyDisk.Stats> stats() {
        return disks.values().stream().map(LazyDisk::stats).toList();
    }

    @Override
    public Optional<NbdExport> find(String name) {
        Digest digest;
        try {
            digest = Digest.parse(name);
        } catch (InvalidNameException e) {
            return Optional.empty();
        }
        LazyDisk disk = disks.get(digest);
        if (disk != null) {
            return Optional.of(new NbdExport() {
                @Override
                public long size() {
                    return disk.size();
                }

                @Override
                public void read(ByteBuffer into, long offset) throws IOException {
                    disk.read(into, offset);
                }

                @Override
                public Optional<FileChannel> fileFor(long offset, int length) throws IOException {
                    return Optional.of(disk.fileFor(offset, length));
                }
            });
        }
        return store.image(digest).map(image -> storedExport(image.digest(), image.size()));
    }

    private NbdExport storedExport(Digest digest, long size) {
        return new NbdExport() {
            @Override
            public long size() {
                return size;
            }

            @Override
            public void read(ByteBuffer into, long offset) throws IOException {
                int start = into.position();
                try (FileChannel blob = store.openImage(digest)) {
                    while (into.hasRemaining()) {
                        if (blob.read(into, offset + into.position() - start) < 0) {
                            throw new IOException("blob " + digest + " ended early");
                        }
                    }
                }
            }
        };
    }

    @Override
    public List<String> names() {
        List<String> names = new ArrayList<>();
        disks.keySet().forEach(d -> names.add(d.toString()));
        store.list().forEach(image -> {
            if (!disks.containsKey(image.digest())) {
                names.add(image.digest().toString());
            }
        });
        return names;
    }

    @Override
    public void close() throws IOException {
        fillers.shutdownNow();
        if (server != null) {
            server.close();
        }
        for (LazyDisk disk : disks.values()) {
            disk.close();
        }
    }
}
