package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Keeps index.json caught up with the journal: rewritten in the background at most about once a
 * second while changes flow, and at once on close, gc and fsck; then the journal is compacted and
 * the blobs of images this process dropped are swept. Also the one place fsck's repair replaces
 * the index ({@link #replaceRepaired}).
 *
 * <p>A store of more than {@value #PROMPT_IMAGES} images is rewritten in the background only once
 * its journal has grown to a quarter of index.json's size ({@link #due}): a rewrite costs time in
 * proportion to the store, so spacing rewrites in proportion to it keeps the cost of a change
 * from growing with the store. Nothing waits for it: the journal frame is the commit point, and
 * every vimgfs process reads the journal; only readers of index.json alone, and the space of
 * dropped images, wait for the rewrite (or the close that always writes what is behind).
 *
 * <p>A rewrite, in order (all but step 1 under the store lock):
 * <ol>
 * <li>without the lock, the metadata blobs queued so far are fsynced and, while the journal is
 *     short, the catalog is serialized ({@link CrashPoint#INDEX_PREPARED}): at 100,000 images that
 *     takes longer than a second, and commits would wait for it;</li>
 * <li>catch up; fsync what commits queued since; the index is the prepared bytes if nothing
 *     changed since, or if commits overtook them (then it names the older sequence and the
 *     journal keeps every frame, replay skipping those the index includes), else serialized now;</li>
 * <li>index.json is replaced ({@link CrashPoint#INDEX_STAGED}, {@link CrashPoint#INDEX_REPLACED});
 *     only configs and manifests already fsynced are named in it;</li>
 * <li>the journal is truncated only if the index covers every frame ({@link CrashPoint#JOURNAL_COMPACTED});</li>
 * <li>a dropped image's blobs are deleted only once the index on disk no longer names it
 *     ({@link CrashPoint#SWEEPING}); those the written index still names wait for the next rewrite;</li>
 * <li>the seal stamp the commits moved on is written ({@link SealStamp#persist});</li>
 * <li>after the lock, the catalog cache of the new index ({@link CrashPoint#CACHE_STAGED}), no fsync.</li>
 * </ol>
 * Lock order: {@link #state} is a leaf, never held while taking the store lock.
 */
final class IndexWriter {
    private static final System.Logger LOG = System.getLogger(IndexWriter.class.getName());
    /** The least time between two background rewrites of index.json while changes flow. */
    private static final long INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);
    /**
     * How far the journal may grow while the writer writes snapshots that commits have already
     * passed (and so cannot compact it); beyond it the writer serializes under the lock.
     */
    private static final long JOURNAL_COMPACT_BYTES = 4L << 20;
    /** Stores up to this many images have index.json rewritten about a second after a change. */
    static final int PROMPT_IMAGES = 10_000;
    /** Above it, the journal grows to index.json's size divided by this before a background rewrite. */
    private static final long INDEX_PER_JOURNAL = 4;

    /** index.json's bytes for a snapshot. */
    private record Prepared(Snapshot snapshot, byte[] index) {
    }

    /** What an index write wrote, for the catalog cache. */
    private record Written(byte[] index, Catalog catalog, long sequence) {
    }

    private final BlobFiles files;
    private final Journal journal;
    private final Snapshots snapshots;
    private final MetadataBlobs metadata;
    private final GarbageCollector collector;
    private final SealStamp sealStamp;
    private final StoreOptions options;
    private final Object state = new Object();
    /** The one thread that rewrites index.json; made at the first schedule. */
    @GuardedBy("state")
    private ScheduledThreadPoolExecutor thread;
    @GuardedBy("state")
    private boolean scheduled;
    @GuardedBy("state")
    private boolean closed;
    @GuardedBy("state")
    private long lastWriteNanos = Long.MIN_VALUE / 2;
    /** Images this process's commits dropped whose blobs wait for index.json to stop naming them. */
    @GuardedBy("store lock")
    private final List<StoredImage> unswept = new ArrayList<>();
    /** Whether this process committed a frame: then its close writes what is behind, whatever the store's size. */
    private volatile boolean committedHere;

    IndexWriter(BlobFiles files, Journal journal, Snapshots snapshots, MetadataBlobs metadata, GarbageCollector collector,
            SealStamp sealStamp, StoreOptions options) {
        this.files = files;
        this.journal = journal;
        this.snapshots = snapshots;
        this.metadata = metadata;
        this.collector = collector;
        this.sealStamp = sealStamp;
        this.options = options;
    }

    /**
     * At open of a writable store, under the lock: rewrites from the journal the metadata blobs a
     * power cut emptied, and schedules a rewrite if a crash (or SIGKILL) came before the index
     * caught up and one is {@linkplain #due due}. A read-only store is read as it is; fsck reports
     * what a power cut emptied.
     */
    @GuardedBy("store lock")
    void recoverAtOpen() throws IOException {
        Snapshot loaded = snapshots.current();
        if (journal.writable()) {
            metadata.restore(journal.read(Journal.START), loaded.catalog(), loaded.indexSequence());
        }
        if (loaded.indexBehind()) {
            schedule();
        }
    }

    /**
     * Asks the writer thread for a rewrite when one is {@linkplain #due due}: at once if the last
     * was a second ago, else a second after it.
     */
    void schedule() {
        if (!due(snapshots.current())) {
            return; // a later commit asks again; close writes what is behind
        }
        synchronized (state) {
            if (scheduled || closed) {
                return;
            }
            if (thread == null) {
                thread = new ScheduledThreadPoolExecutor(1, runnable -> {
                    Thread writer = new Thread(runnable, "vimgfs index writer " + files.root());
                    writer.setDaemon(true); // the journal is durable: exiting without this thread loses nothing
                    return writer;
                });
                thread.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
            }
            scheduled = true;
            long delay = Math.max(0, lastWriteNanos + INTERVAL_NANOS - System.nanoTime());
            thread.schedule(this::writeInBackground, delay, TimeUnit.NANOSECONDS);
        }
    }

    /** Brings index.json up to date now, compacts the journal, and sweeps what this process dropped. */
    void syncIndex() throws IOException {
        cache(snapshots.write("write its index", () -> write(null)));
    }

    /** The same, for a caller that holds the lock (gc deletes only what the index on disk no longer names). */
    @GuardedBy("store lock")
    void writeNow() throws IOException {
        snapshots.catchUp();
        cache(write(null));
    }

    /** After each commit's frame: the images it dropped, whose blobs go once index.json no longer names them. */
    @GuardedBy("store lock")
    void dropped(List<StoredImage> images) {
        committedHere = true;
        unswept.addAll(images);
    }

    /**
     * fsck's repair: index.json with only the healthy entries, at a sequence no process has seen,
     * so every other one rereads it; the journal, whose frames may name what was dropped, emptied.
     */
    @GuardedBy("store lock")
    void replaceRepaired(List<JsonNode> healthy) throws IOException {
        files.replaceIndex(OciLayout.indexJson(healthy, snapshots.current().sequence() + 1), () -> { });
        journal.truncate(Journal.START);
    }

    /**
     * Stops the thread, then writes what is behind: at a mount's unmount always; at a CLI call's
     * end if it committed, or the store is small enough, or a rewrite is due (a call that only
     * read a large store leaves the rewrite to the process that grows the journal).
     */
    void close() throws IOException {
        ScheduledThreadPoolExecutor writer;
        synchronized (state) {
            closed = true;
            writer = thread;
        }
        try {
            if (writer != null) {
                writer.shutdown();
                writer.awaitTermination(1, TimeUnit.MINUTES);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        Snapshot s = snapshots.current();
        boolean mount = !options.mountRoots().isEmpty();
        if (journal.writable() && (s.indexBehind() && (committedHere || mount || due(s))
                || snapshots.write("close it", () -> !unswept.isEmpty() || sealStamp.isUnwritten()))) {
            syncIndex();
        }
    }

    /** Whether a background rewrite is due: always for a store of up to {@value #PROMPT_IMAGES} images. */
    static boolean due(Snapshot s) {
        return s.catalog().size() <= PROMPT_IMAGES || s.journalEnd() >= deferBytes(s);
    }

    /** How long a large store's journal grows before a rewrite: a quarter of index.json. */
    private static long deferBytes(Snapshot s) {
        return s.index() == null ? 0 : s.index().size() / INDEX_PER_JOURNAL;
    }

    /** Beyond this, the writer serializes under the lock rather than write bytes commits have passed. */
    private static long compactBytes(Snapshot s) {
        return Math.max(JOURNAL_COMPACT_BYTES, 2 * deferBytes(s));
    }

    private void writeInBackground() {
        synchronized (state) {
            scheduled = false;
            lastWriteNanos = System.nanoTime();
        }
        try {
            metadata.syncQueued(); // the bulk of it without the lock, so commits go on meanwhile
            Snapshot s = snapshots.current();
            Prepared prepared = s.indexBehind() && s.journalEnd() < compactBytes(s) // else it is serialized under the lock
                    ? new Prepared(s, OciLayout.indexJson(s.catalog(), s.sequence())) : null;
            if (prepared != null) {
                options.crashHook().accept(CrashPoint.INDEX_PREPARED);
            }
            cache(snapshots.write("write its index", () -> write(prepared)));
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": cannot rewrite index.json (" + e.getMessage()
                    + "); the journal keeps every change, and the next commit or close tries again");
        }
    }

    /** Steps 2 to 6 of the class comment; returns what it wrote, if anything. */
    @GuardedBy("store lock")
    private Written write(Prepared prepared) throws IOException {
        Snapshot s = snapshots.current();
        Written written = null;
        Snapshot from = s;
        if (s.indexBehind()) {
            metadata.syncQueued(); // whatever the commits since the last drain added
            long start = System.nanoTime();
            Prepared chosen = choose(s, prepared);
            from = chosen.snapshot();
            files.replaceIndex(chosen.index(), () -> options.crashHook().accept(CrashPoint.INDEX_STAGED));
            options.events().indexWritten(System.nanoTime() - start, chosen.index().length);
            written = new Written(chosen.index(), from.catalog(), from.sequence());
            options.crashHook().accept(CrashPoint.INDEX_REPLACED);
            publish(s, from);
        }
        sweep(s, from);
        sealStamp.persist();
        return written;
    }

    /** The bytes to write for {@code s}: prepared ones still newer than the index on disk, or serialized now. */
    private static Prepared choose(Snapshot s, Prepared prepared) {
        if (prepared != null && prepared.snapshot().catalog() == s.catalog()) {
            return new Prepared(s, prepared.index()); // nothing changed since
        }
        if (prepared != null && prepared.snapshot().sequence() > s.indexSequence()
                && prepared.snapshot().sequence() < s.sequence() && s.journalEnd() < compactBytes(s)) {
            return prepared;
        }
        return new Prepared(s, OciLayout.indexJson(s.catalog(), s.sequence()));
    }

    /** After index.json includes {@code from}: compacts the journal if that is everything ({@code s}). */
    @GuardedBy("store lock")
    private void publish(Snapshot s, Snapshot from) throws IOException {
        if (from == s) {
            journal.truncate(Journal.START); // every frame is at or below the sequence the index now has
            options.crashHook().accept(CrashPoint.JOURNAL_COMPACTED);
            snapshots.publish(s.compacted(snapshots.indexVersion(), journal.version()));
        } else {
            snapshots.publish(s.indexAt(snapshots.indexVersion(), from.sequence()));
            schedule(); // the commits after the snapshot
        }
    }

    /** Deletes the blobs of dropped images the index on disk ({@code from}'s) no longer names. */
    @GuardedBy("store lock")
    private void sweep(Snapshot s, Snapshot from) throws IOException {
        if (unswept.isEmpty()) {
            return;
        }
        List<StoredImage> dropped = new ArrayList<>();
        List<StoredImage> stillNamed = new ArrayList<>();
        for (StoredImage image : unswept) {
            (from != s && from.catalog().image(image.layer()).isPresent() ? stillNamed : dropped).add(image);
        }
        unswept.clear(); // if the sweep fails part way, gc finds the rest
        unswept.addAll(stillNamed);
        if (!dropped.isEmpty()) {
            String sealed = sealStamp.before();
            collector.sweepDropped(dropped, snapshots.current().catalog());
            sealStamp.moveOn(sealed);
        }
    }

    private void cache(Written written) {
        if (written != null) {
            CatalogCache.writeQuietly(files, written.index(), written.catalog(), written.sequence(), options.crashHook());
        }
    }
}
