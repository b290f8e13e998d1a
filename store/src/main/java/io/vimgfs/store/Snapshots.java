package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Holds the store's current {@link Snapshot} and alone replaces it. Readers take {@link #current()}
 * without a lock; writers go through {@link #write}, which takes the store lock and first catches
 * up with what other processes did, so no writer can act on a stale catalog.
 *
 * <p>Catching up (under the lock, or on a read-only store): a longer journal is read from where
 * this process stopped; a new index.json whose sequence this process already has (another
 * process compacted) is taken without parsing it, its journal read from the start; any other new
 * index.json is loaded whole, from the catalog cache when it matches the index's bytes. Replay
 * applies the recorded changes, decides nothing again, queues the metadata blobs the frames add
 * for syncing ({@link MetadataBlobs}), then {@link CrashPoint#JOURNAL_REPLAYED}, then a writable
 * store cuts a torn tail off so its own next frame follows sound ones.
 */
final class Snapshots {
    private static final System.Logger LOG = System.getLogger(Snapshots.class.getName());

    private final BlobFiles files;
    private final Journal journal;
    private final StoreLock lock;
    private final MetadataBlobs metadata;
    private final Consumer<CrashPoint> crashHook;
    /** Images read from manifest and config blobs, so reloading index.json never re-reads them. */
    private final Cache<Digest, StoredImage> imagesByManifest = Caffeine.newBuilder().maximumSize(100_000).build();
    private final AtomicLong generation = new AtomicLong();
    /** Read by anyone without a lock; written only by this class, under the store lock (or at open). */
    private volatile Snapshot current;

    Snapshots(BlobFiles files, Journal journal, StoreLock lock, MetadataBlobs metadata, Consumer<CrashPoint> crashHook) {
        this.files = files;
        this.journal = journal;
        this.lock = lock;
        this.metadata = metadata;
        this.crashHook = crashHook;
    }

    Snapshot current() {
        return current;
    }

    /** Runs a change of the store alone among writers, after catching up with other processes. */
    <T> T write(String purpose, StoreLock.Section<T> section) throws IOException {
        return lock.exclusive(purpose, () -> {
            catchUp();
            return section.run();
        });
    }

    /** Runs a read that must see no writer in between, after catching up. */
    <T> T read(StoreLock.Section<T> section) throws IOException {
        return lock.consistent(() -> {
            catchUp();
            return section.run();
        });
    }

    /** Whether index.json or the journal changed since the current snapshot was read: two stats. */
    boolean changedOnDisk() throws IOException {
        Snapshot seen = current;
        return !indexVersion().equals(seen.index()) || !journal.version().equals(seen.journalVersion());
    }

    /** Publishes the snapshot a commit or an index write made. */
    @GuardedBy("store lock")
    void publish(Snapshot next) {
        current = next;
    }

    /** The next value of the change counter, for a snapshot with a changed catalog. */
    long nextGeneration() {
        return generation.incrementAndGet();
    }

    /** Reads the store afresh from index.json (or its cache) and the journal: at open, and after fsck rewrote the index. */
    @GuardedBy("store lock")
    void reloadWhole() throws IOException {
        current = load();
    }

    /** Catches up with other processes: see the class comment. */
    @GuardedBy("store lock")
    void catchUp() throws IOException {
        Snapshot s = current;
        Snapshot.IndexVersion index = indexVersion();
        if (!index.equals(s.index())) {
            OptionalLong included = OciLayout.generationInHead(readHead());
            if (included.isPresent() && included.getAsLong() <= s.sequence() && included.getAsLong() >= s.indexSequence()) {
                current = replay(s.reindexed(index, included.getAsLong()), Journal.START);
            } else {
                current = load();
            }
            return;
        }
        Journal.Version onDisk = journal.version();
        if (!onDisk.equals(s.journalVersion())) {
            boolean grew = Objects.equals(onDisk.fileKey(), s.journalVersion().fileKey()) && onDisk.size() >= s.journalEnd();
            current = replay(s, grew ? s.journalEnd() : Journal.START);
        }
    }

    Snapshot.IndexVersion indexVersion() throws IOException {
        try {
            BasicFileAttributes attributes = Files.readAttributes(files.index(), BasicFileAttributes.class);
            return new Snapshot.IndexVersion(attributes.fileKey(), attributes.lastModifiedTime().to(TimeUnit.NANOSECONDS),
                    attributes.size());
        } catch (NoSuchFileException e) {
            throw noIndex(e);
        }
    }

    private byte[] readHead() throws IOException {
        try (InputStream in = Files.newInputStream(files.index())) {
            return in.readNBytes(512);
        } catch (NoSuchFileException e) {
            throw noIndex(e);
        }
    }

    private StoreDamagedException noIndex(NoSuchFileException e) {
        return new StoreDamagedException("store " + files.root() + " has no index.json; run 'vimgfs fsck --repair'", e);
    }

    /** The snapshot with the journal's frames from {@code from} applied, those it already includes skipped. */
    private Snapshot replay(Snapshot s, long from) throws IOException {
        Journal.Contents contents = journal.read(from);
        Catalog catalog = s.catalog();
        long sequence = s.sequence();
        for (Journal.Frame frame : contents.frames()) {
            if (frame.sequence() > sequence) {
                // drops are recorded: a replay re-decides nothing about what keeps an image
                catalog = catalog.keptBy(Catalog.KEEP_ALL).apply(frame.changes()).committed();
                sequence = frame.sequence();
                metadata.queue(frame);
            }
        }
        crashHook.accept(CrashPoint.JOURNAL_REPLAYED);
        if (contents.damage().isPresent()) {
            LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": dropped the end of .vimgfs/journal, "
                    + contents.damage().get() + " (a commit torn by a crash, never acknowledged)");
            if (journal.writable()) {
                journal.truncate(contents.end());
            }
        }
        long counter = sequence == s.sequence() ? s.generation() : generation.incrementAndGet();
        return s.replayed(catalog, journal.version(), contents.end(), sequence, counter);
    }

    private Snapshot load() throws IOException {
        Snapshot.IndexVersion version = indexVersion();
        byte[] bytes = Files.readAllBytes(files.index());
        Optional<CatalogCache.Loaded> cached = CatalogCache.read(files.workDir().resolve(CatalogCache.FILE), bytes);
        if (cached.isPresent()) {
            return replay(Snapshot.fromIndex(cached.get().catalog(), version, cached.get().generation(),
                    generation.incrementAndGet()), Journal.START);
        }
        OciLayout.Index index = OciLayout.parseIndex(bytes);
        Map<Digest, StoredImage> images = new HashMap<>();
        Map<ImageName, Digest> names = new HashMap<>();
        List<JsonNode> foreign = new ArrayList<>(index.foreign());
        boolean unreadable = false;
        for (OciLayout.Entry entry : index.entries()) {
            Optional<StoredImage> image = readImage(entry);
            if (image.isEmpty()) {
                foreign.add(entry.raw()); // kept verbatim; fsck reports it
                unreadable = true;
                continue;
            }
            images.put(image.get().layer(), image.get());
            entry.name().ifPresent(name -> names.put(name, image.get().layer()));
        }
        Snapshot fromIndex = Snapshot.fromIndex(Catalog.of(images.values(), names, foreign), version, index.generation(),
                generation.incrementAndGet());
        if (!unreadable && journal.writable()) { // an older store, or another tool's index.json
            CatalogCache.writeQuietly(files, bytes, fromIndex.catalog(), index.generation(), crashHook);
        }
        return replay(fromIndex, Journal.START);
    }

    private Optional<StoredImage> readImage(OciLayout.Entry entry) {
        if (entry.cached().isPresent()) {
            return entry.cached();
        }
        try {
            return Optional.of(imagesByManifest.get(entry.manifest(), this::readImageBlobs));
        } catch (UncheckedIOException e) {
            LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": cannot read image " + entry.manifest()
                    + " (" + e.getCause().getMessage() + "); run 'vimgfs fsck'");
            return Optional.empty();
        }
    }

    private StoredImage readImageBlobs(Digest manifest) {
        try {
            byte[] manifestBytes = files.read(manifest);
            byte[] config = files.read(OciLayout.configOf(manifest, manifestBytes));
            return OciLayout.parseImage(manifest, manifestBytes, config);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
