package io.vimgfs.store.registry;

import io.vimgfs.store.ChunkIndex;
import io.vimgfs.store.Digest;
import io.vimgfs.store.DigestMismatchException;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.LazyPulls;
import io.vimgfs.store.PartialDownload;
import io.vimgfs.store.Reference;
import io.vimgfs.store.Upload;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A disk pulled lazily ({@code vimgfs pull --lazy}): its verified reads, and its fetch. A read
 * of chunks not yet here fetches them (adjacent misses coalesced into one range of up to
 * {@value #DEMAND_CHUNKS} MiB), checks each against the {@link ChunkIndex} the manifest
 * authenticates, makes it durable in the store's {@link PartialDownload} (data, fsync, then its
 * bit), and only then answers; a chunk that does not match is never written or handed out, and
 * the error names it and both digests. All-zero chunks are never fetched. {@link #fill} fetches
 * the rest in order and then places the disk like any pulled image, its full digest checked;
 * reads then come from the placed blob (the staging file renamed: the same bytes).
 *
 * <p>A disk whose format QEMU parses (qcow2) is probed before anything is served, over its first
 * chunks, with the checks a placement makes: a hostile header is refused before QEMU sees it.
 */
public final class LazyDisk implements Closeable {
    private static final System.Logger LOG = System.getLogger(LazyDisk.class.getName());
    static final int DEMAND_CHUNKS = 4;
    private static final int FILL_CHUNKS = 8;
    /** Range GETs the background fill keeps in flight, as a ranged pull does. */
    private static final int FILL_WORKERS = 4;
    /** The chunks fetched before anything is served: a qcow2 header and its first cluster of up to 2 MiB. */
    private static final int PROBED_CHUNKS = 2;

    /** What the fetch has done, for {@code vimgfs status} and the metrics. */
    public record Stats(Digest layer, long size, long bytesHere, long onDemand, long background, long failures,
            boolean placed) {
        public double fetchedPercent() {
            return size == 0 ? 100 : bytesHere * 100.0 / size;
        }
    }

    private final ImageStore store;
    private final LazyPulls.Pull pull;
    private final RegistryClient client;
    private final String repository;
    private final String display;
    private final ChunkIndex index;
    private final PartialDownload partial;
    private final int count;
    private final ConcurrentHashMap<Integer, CompletableFuture<Void>> fetching = new ConcurrentHashMap<>();
    /** Taken to read; taken exclusively to swap the staging file for the placed blob. */
    private final ReentrantReadWriteLock placing = new ReentrantReadWriteLock();
    private volatile FileChannel placed;
    /** The staging file, read-only: what {@link #fileFor} hands out before the disk is placed (the same inode after). */
    private final FileChannel staged;
    private final AtomicLong onDemand = new AtomicLong();
    private final AtomicLong background = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicInteger cursor = new AtomicInteger();
    /** Fetches a reader waits for: while there are any, the fill starts no new range (the link is theirs). */
    private final AtomicInteger demanded = new AtomicInteger();
    private volatile boolean closed;
    /** Why the whole disk was refused at placement (its digest), if it was: nothing will place it. */
    private volatile String refused;

    private LazyDisk(ImageStore store, LazyPulls.Pull pull, RegistryClient client, String repository, String display,
            ChunkIndex index, PartialDownload partial, FileChannel staged) {
        this.store = store;
        this.pull = pull;
        this.client = client;
        this.repository = repository;
        this.display = display;
        this.index = index;
        this.partial = partial;
        this.count = partial.rangeCount();
        this.staged = staged;
    }

    /**
     * Opens the lazy pull: resumes its partial download (or starts one), records the zero chunks,
     * fetches the first chunks and probes them. Fails, serving nothing, on a disk that is not what
     * its manifest says or that a placement would refuse.
     */
    public static LazyDisk open(ImageStore store, LazyPulls.Pull pull, RegistryClient client, String repository,
            String display) throws IOException {
        ChunkIndex index = ChunkIndex.parse(pull.chunks(), pull.size());
        Digest named = Digest.of(sha256(pull.chunks(), 0, pull.chunks().length));
        PartialDownload partial = store.resumeDownload(pull.layer(), pull.size(), ChunkIndex.CHUNK_BYTES);
        FileChannel staged;
        try {
            staged = partial.openForReading();
        } catch (IOException | RuntimeException e) {
            partial.close();
            throw e;
        }
        LazyDisk disk = new LazyDisk(store, pull, client, repository, display, index, partial, staged);
        try {
            partial.hashAtCompletion();
            BitSet zeros = new BitSet();
            for (int i = 0; i < disk.count; i++) {
                zeros.set(i, index.isZero(i) && !partial.isDone(i));
            }
            partial.recordHoles(zeros);
            disk.checkFormat(named);
            return disk;
        } catch (IOException | RuntimeException e) {
            staged.close();
            partial.close();
            throw e;
        }
    }

    public long size() {
        return pull.size();
    }

    public Digest layer() {
        return pull.layer();
    }

    public Stats stats() {
        return new Stats(pull.layer(), pull.size(), placed != null ? pull.size() : partial.bytesDone(), onDemand.get(),
                background.get(), failures.get(), placed != null);
    }

    /** Fills {@code into} from {@code offset} with verified bytes, fetching the chunks not here yet. */
    public void read(ByteBuffer into, long offset) throws IOException {
        long end = offset + into.remaining();
        if (offset < 0 || end > pull.size()) {
            throw new IOException("a read of bytes " + offset + "-" + end + " of a " + pull.size() + "-byte disk");
        }
        placing.readLock().lock();
        try {
            if (placed == null) {
                ensureRange(offset, end);
            }
            while (into.hasRemaining()) {
                long at = offset + (end - offset - into.remaining());
                int n = placed != null ? placed.read(into, at) : readStaged(into, at);
                if (n < 0) {
                    throw new IOException("the disk's file ended at byte " + at);
                }
            }
        } finally {
            placing.readLock().unlock();
        }
    }

    /**
     * The file holding bytes {@code offset..offset+length} once each is verified (fetched now if
     * missing): the placed blob, or the staging file, whose zero chunks are holes never written.
     * Both are the same inode (placing renames it), so a channel handed out stays right.
     */
    public FileChannel fileFor(long offset, int length) throws IOException {
        placing.readLock().lock();
        try {
            if (placed == null) {
                ensureRange(offset, offset + length);
                return staged;
            }
            return placed;
        } finally {
            placing.readLock().unlock();
        }
    }

    /** Makes the chunks of bytes {@code from..to} here, for a reader waiting on them. */
    private void ensureRange(long from, long to) throws IOException {
        for (long c = from / ChunkIndex.CHUNK_BYTES; c * ChunkIndex.CHUNK_BYTES < to; c++) {
            ensure((int) c, DEMAND_CHUNKS, onDemand);
        }
    }

    /** Zero chunks come from memory: their bytes in the staging file were never written or checked. */
    private int readStaged(ByteBuffer into, long at) throws IOException {
        int chunk = (int) (at / ChunkIndex.CHUNK_BYTES);
        int inChunk = (int) Math.min(into.remaining(), (long) (chunk + 1) * ChunkIndex.CHUNK_BYTES - at);
        if (index.isZero(chunk)) {
            for (int i = 0; i < inChunk; i++) {
                into.put((byte) 0);
            }
            return inChunk;
        }
        ByteBuffer part = into.slice().limit(inChunk);
        int n = partial.read(part, at);
        into.position(into.position() + Math.max(n, 0));
        return n;
    }

    /** Why the disk could not be placed when it was whole, if so: a fill will not place it. */
    public Optional<String> refusal() {
        return Optional.ofNullable(refused);
    }

    /**
     * Fetches every chunk not here yet, in order, then places the disk. Returns once placed; a
     * fetch that fails is thrown (the chunks done stay done for the next call).
     */
    public void fill() throws IOException {
        if (refused != null) {
            throw new IOException(refused);
        }
        cursor.set(0); // a fill tried again looks at every chunk again; those done are skipped at once
        java.util.concurrent.ExecutorService workers = java.util.concurrent.Executors.newFixedThreadPool(FILL_WORKERS, r -> {
            Thread t = new Thread(r, "vimgfs-lazy-fetch");
            t.setDaemon(true);
            return t;
        });
        try {
            List<java.util.concurrent.Future<Void>> running = new ArrayList<>();
            for (int w = 0; w < FILL_WORKERS; w++) {
                running.add(workers.submit(this::fillGroups));
            }
            for (java.util.concurrent.Future<Void> f : running) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    if (e.getCause() instanceof IOException io) {
                        throw io;
                    }
                    throw new IOException(e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted");
                }
            }
        } finally {
            workers.shutdownNow();
        }
        if (!closed) {
            place();
        }
    }

    /** One fill worker: takes the next group of chunks in order, until none is left or a fetch fails. */
    private Void fillGroups() throws IOException {
        for (int c = cursor.getAndAdd(FILL_CHUNKS); c < count && !closed; c = cursor.getAndAdd(FILL_CHUNKS)) {
            for (int i = c; i < Math.min(count, c + FILL_CHUNKS) && !closed; i++) {
                yieldToReaders();
                ensure(i, c + FILL_CHUNKS - i, background);
            }
        }
        return null;
    }

    private void yieldToReaders() throws IOException {
        while (demanded.get() > 0 && !closed) {
            try {
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted");
            }
        }
    }

    /** Makes chunk {@code c} here: fetched by this thread (with up to {@code most - 1} after it), or by the one fetching it. */
    private void ensure(int c, int most, AtomicLong counter) throws IOException {
        while (!partial.isDone(c)) {
            CompletableFuture<Void> mine = new CompletableFuture<>();
            CompletableFuture<Void> running = fetching.putIfAbsent(c, mine);
            if (running != null) {
                await(running);
                continue;
            }
            List<Integer> claimed = new ArrayList<>(List.of(c));
            try {
                if (partial.isDone(c)) {
                    mine.complete(null);
                    return;
                }
                for (int next = c + 1; claimed.size() < most && next < count && !partial.isDone(next)
                        && !index.isZero(next) && fetching.putIfAbsent(next, mine) == null; next++) {
                    claimed.add(next);
                }
                boolean demand = counter == onDemand;
                if (demand) {
                    demanded.incrementAndGet();
                }
                try {
                    fetch(c, claimed.size(), counter);
                } finally {
                    if (demand) {
                        demanded.decrementAndGet();
                    }
                }
                mine.complete(null);
            } catch (IOException | RuntimeException e) {
                mine.completeExceptionally(e);
                throw e;
            } finally {
                claimed.forEach(fetching::remove);
            }
        }
    }

    private static void await(CompletableFuture<Void> running) throws IOException {
        try {
            running.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof IOException io) {
                throw new IOException(io.getMessage(), io);
            }
            throw e;
        }
    }

    /** One range GET of chunks {@code first..first+n-1}, each checked against the index before it is written. */
    private void fetch(int first, int n, AtomicLong counter) throws IOException {
        long from = (long) first * ChunkIndex.CHUNK_BYTES;
        long to = Math.min(pull.size(), from + (long) n * ChunkIndex.CHUNK_BYTES);
        byte[] bytes = new byte[(int) (to - from)];
        HttpResponse<InputStream> response = client.blobRange(repository, pull.layer(), from, to - 1, display);
        try (InputStream body = response.body()) {
            if (response.statusCode() == 200) {
                throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": the registry ignored a Range"
                        + " request (HTTP 200); a lazy pull needs ranges");
            }
            RangedDownload.checkRange(response, from, to - 1, pull.size(), pull.layer(), display);
            if (body.readNBytes(bytes, 0, bytes.length) != bytes.length) {
                throw new IOException(display + ": the registry's answer for bytes " + from + "-" + (to - 1) + " ended early");
            }
        }
        for (int i = 0; i < n; i++) {
            int c = first + i;
            int at = i * ChunkIndex.CHUNK_BYTES;
            int length = index.lengthOf(c);
            if (!index.matches(c, bytes, at, length)) {
                failures.incrementAndGet();
                throw new IOException(display + ": chunk " + c + " (bytes " + (from + at) + "-" + (from + at + length - 1)
                        + ") of " + pull.layer() + " hashes to " + Digest.of(sha256(bytes, at, length)) + ", not "
                        + index.digestOf(c) + " as its chunk index says: the registry's copy is corrupt or tampered"
                        + " with; nothing of it is served or placed");
            }
        }
        partial.write(ByteBuffer.wrap(bytes), from);
        partial.complete(first, n);
        counter.addAndGet(bytes.length);
    }

    /** The first chunks, fetched and verified, probed as a placement would; the manifest must describe them. */
    private void checkFormat(Digest named) throws IOException {
        LazyManifest.checkBeforeFetching(pull, named, display);
        for (int c = 0; c < Math.min(PROBED_CHUNKS, count); c++) {
            ensure(c, PROBED_CHUNKS, onDemand);
        }
        LazyManifest.checkProbe(pull, partial.probe());
    }

    /** Places the whole disk (its full digest checked) under the pull's name, then reads from the blob. */
    private void place() throws IOException {
        placing.writeLock().lock();
        try {
            if (placed != null) {
                return;
            }
            if (store.image(pull.layer()).isEmpty()) {
                Upload whole = partial.completed();
                try {
                    store.placeArtifact(whole, pull.manifest(), pull.config(), Optional.of(pull.chunks()),
                            new Reference(pull.name(), Optional.empty()));
                } catch (DigestMismatchException e) {
                    failures.incrementAndGet();
                    refused = display + ": the whole disk hashes to " + e.actual() + ", not " + pull.layer()
                            + ", though every chunk matched its index: the index does not describe the disk; nothing"
                            + " was placed";
                    store.directory().lazyPulls().remove(pull.layer()); // a rerun would fetch the same lie
                    throw new IOException(refused, e);
                } catch (IOException | RuntimeException e) {
                    // placing consumed the staging file: a later fill has nothing to place (the next mount starts over)
                    refused = display + ": placing the whole disk failed: " + e.getMessage();
                    throw e;
                } finally {
                    partial.discard();
                }
            } else {
                partial.discard(); // placed already (by an earlier run, or another pull): only the name is new
                store.tag(pull.layer().toString(), pull.name());
            }
            placed = store.openImage(pull.layer());
            store.directory().lazyPulls().remove(pull.layer());
            LOG.log(System.Logger.Level.INFO, "lazy pull of " + pull.name() + " (" + pull.layer() + ") is complete and"
                    + " placed: " + onDemand.get() + " bytes fetched on demand, " + background.get() + " in the background");
        } finally {
            placing.writeLock().unlock();
        }
    }

    private static byte[] sha256(byte[] bytes, int offset, int length) {
        MessageDigest sha = ResumableBody.newSha256();
        sha.update(bytes, offset, length);
        return sha.digest();
    }

    /** Stops fetching; the chunks done stay recorded for the next open to resume. */
    @Override
    public void close() throws IOException {
        closed = true;
        placing.writeLock().lock();
        try {
            staged.close();
            if (placed != null) {
                placed.close();
            } else {
                partial.close();
            }
        } finally {
            placing.writeLock().unlock();
        }
    }
}
