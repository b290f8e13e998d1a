package io.vimgfs.store;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A blob being downloaded in ranges, in any order and over several runs: its sparse staging file
 * ({@code .vimgfs/staging/sha256-<hex>.download}, an {@link Upload} that a run locks) and the
 * range map beside it ({@code sha256-<hex>.ranges}: a header, then one byte per range, 1 once the
 * range is durable). Both are named by the blob's digest, so the same pull run again finds them
 * and fetches only the ranges the map lacks. The file is hashed in order while the download goes
 * on: whenever the ranges from the start up to some point are all done, they are read back and
 * hashed, so once the last range is in the digest is (nearly) ready and placing need not read the
 * whole file again.
 *
 * <p>Completing a range passes, in order: the range's bytes written ({@link CrashPoint#RANGE_WRITTEN}),
 * the staging file fsynced ({@link CrashPoint#RANGE_SYNCED}), its byte in the map written and the map
 * fsynced ({@link CrashPoint#RANGE_RECORDED}). The map is therefore trusted without re-reading: a
 * range it records had its bytes on disk first. A crash anywhere costs at most the ranges in flight.
 * The bytes are still checked against the digest when the upload is placed.
 *
 * <p>Garbage collection keeps a download whose staging file a run has locked, and one nobody has
 * locked for {@link #ABANDONED_AFTER} after its last write (so a killed pull can be run again);
 * after that it removes both files.
 */
public final class PartialDownload implements Closeable {
    static final String DATA_SUFFIX = ".download";
    static final String RANGES_SUFFIX = ".ranges";
    /** How long an unlocked partial download is kept for a rerun to resume. */
    public static final Duration ABANDONED_AFTER = Duration.ofHours(24);
    private static final long MAGIC = 0x5647_4653_524e_4731L; // "VGFSRNG1"
    private static final int HEADER = 24;
    private static final int ZERO_RUN = 1 << 20;
    private static final byte[] ZEROS = new byte[ZERO_RUN];

    private final Upload upload;
    private final Path rangesFile;
    private final FileChannel ranges;
    private final long size;
    private final long rangeBytes;
    private final int count;
    private final Consumer<CrashPoint> crashHook;
    @GuardedBy("this")
    private final BitSet done;
    /** Held while the ranges before {@link #hashed} are read back into {@link #inOrder}. */
    private final ReentrantLock hashing = new ReentrantLock();
    @GuardedBy("hashing")
    private final MessageDigest inOrder = BlobFiles.newSha256();
    @GuardedBy("hashing")
    private ByteBuffer readBack;
    /** The first range not yet hashed in order. */
    private volatile int hashed;
    private volatile boolean hashAtEnd;

    private PartialDownload(Upload upload, Path rangesFile, FileChannel ranges, long size, long rangeBytes,
            BitSet done, Consumer<CrashPoint> crashHook) {
        this.upload = upload;
        this.rangesFile = rangesFile;
        this.ranges = ranges;
        this.size = size;
        this.rangeBytes = rangeBytes;
        this.count = (int) ((size + rangeBytes - 1) / rangeBytes);
        this.done = done;
        this.crashHook = crashHook;
    }

    /**
     * Opens the download of {@code digest} ({@code size} bytes in ranges of {@code rangeBytes}),
     * resuming what an earlier run recorded with the same sizes, or starting afresh.
     */
    static PartialDownload open(BlobFiles files, Digest digest, long size, long rangeBytes,
            Consumer<CrashPoint> crashHook) throws IOException {
        if (size <= 0 || rangeBytes <= 0 || (size + rangeBytes - 1) / rangeBytes > Integer.MAX_VALUE - HEADER) {
            throw new IllegalArgumentException("a download of " + size + " bytes in ranges of " + rangeBytes);
        }
        Upload upload = Upload.resume(files.downloadFile(digest));
        try {
            Path rangesFile = files.downloadRanges(digest);
            BitSet done = recorded(rangesFile, size, rangeBytes, upload.size());
            if (done == null) {
                upload.truncate(0); // bytes of an unrecorded run are not trusted: start over
                upload.truncate(size);
                upload.force();
                writeEmptyMap(rangesFile, size, rangeBytes);
                done = new BitSet();
            }
            FileChannel channel = FileChannel.open(rangesFile, StandardOpenOption.READ, StandardOpenOption.WRITE);
            return new PartialDownload(upload, rangesFile, channel, size, rangeBytes, done, crashHook);
        } catch (IOException | RuntimeException e) {
            upload.close();
            throw e;
        }
    }

    /** The ranges a map records, or null when there is none for these sizes (or the staging file is not whole). */
    private static BitSet recorded(Path rangesFile, long size, long rangeBytes, long stagedBytes) throws IOException {
        if (!Files.exists(rangesFile) || stagedBytes != size) {
            return null;
        }
        byte[] map = Files.readAllBytes(rangesFile);
        int count = (int) ((size + rangeBytes - 1) / rangeBytes);
        ByteBuffer header = ByteBuffer.wrap(map);
        if (map.length != HEADER + count || header.getLong() != MAGIC || header.getLong() != size
                || header.getLong() != rangeBytes) {
            return null;
        }
        BitSet done = new BitSet(count);
        for (int i = 0; i < count; i++) {
            if (map[HEADER + i] == 1) {
                done.set(i);
            }
        }
        return done;
    }

    /** A map recording no range, put in place whole (temporary file, fsync, rename, directory fsync). */
    private static void writeEmptyMap(Path rangesFile, long size, long rangeBytes) throws IOException {
        int count = (int) ((size + rangeBytes - 1) / rangeBytes);
        ByteBuffer map = ByteBuffer.allocate(HEADER + count).putLong(MAGIC).putLong(size).putLong(rangeBytes);
        map.position(0);
        Path temporary = rangesFile.resolveSibling(rangesFile.getFileName() + ".tmp");
        try (FileChannel channel = FileChannel.open(temporary, Set.of(StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE), StorePermissions.privateFile())) {
            while (map.hasRemaining()) {
                channel.write(map);
            }
            channel.force(true);
        }
        Files.move(temporary, rangesFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        BlobFiles.syncDirectory(rangesFile.getParent());
    }

    public long size() {
        return size;
    }

    public int rangeCount() {
        return count;
    }

    /** The offset of range {@code i}'s first byte. */
    public long start(int range) {
        return range * rangeBytes;
    }

    public long length(int range) {
        return Math.min(rangeBytes, size - start(range));
    }

    public synchronized boolean isDone(int range) {
        return done.get(range);
    }

    /** The bytes of the ranges recorded so far. */
    public synchronized long bytesDone() {
        long bytes = 0;
        for (int i = done.nextSetBit(0); i >= 0; i = done.nextSetBit(i + 1)) {
            bytes += length(i);
        }
        return bytes;
    }

    /** Writes bytes of a range at {@code offset}; a 1 MiB run of zeros stays a hole. */
    public void write(ByteBuffer data, long offset) throws IOException {
        int length = data.remaining();
        boolean zeros = data.hasArray() && length <= ZERO_RUN
                && Arrays.mismatch(data.array(), data.arrayOffset() + data.position(),
                        data.arrayOffset() + data.position() + length, ZEROS, 0, length) < 0;
        if (!zeros) {
            upload.write(data, offset);
        }
    }

    /** Records that every byte of range {@code i} is written: fsync of the data, then of its byte in the map. */
    public void complete(int range) throws IOException {
        complete(range, 1);
    }

    /** {@link #complete} of {@code n} adjacent ranges from {@code first}, with one fsync of each file. */
    public void complete(int first, int n) throws IOException {
        crashHook.accept(CrashPoint.RANGE_WRITTEN);
        upload.force();
        crashHook.accept(CrashPoint.RANGE_SYNCED);
        record(first, n);
        crashHook.accept(CrashPoint.RANGE_RECORDED);
        hashInOrder();
    }

    /**
     * Records ranges that are never written because they are all zeros (a chunk index says so):
     * the staging file is sparse from its creation, so they read as zeros already.
     */
    public void recordHoles(BitSet holes) throws IOException {
        BitSet recorded = new BitSet();
        for (int i = holes.nextSetBit(0); i >= 0 && i < count; i = holes.nextSetBit(i + 1)) {
            int end = Math.min(holes.nextClearBit(i), count);
            writeMap(i, end - i);
            recorded.set(i, end);
            i = end;
        }
        ranges.force(false);
        synchronized (this) {
            done.or(recorded);
        }
        hashInOrder();
    }

    /**
     * Leaves the digest to {@link #completed}, which then reads the whole file once: for a
     * download whose ranges come out of order (a lazy pull), so that completing a range a reader
     * waits for never waits for hashing the ranges before it.
     */
    public void hashAtCompletion() {
        hashAtEnd = true;
    }

    private void record(int first, int n) throws IOException {
        writeMap(first, n);
        ranges.force(false);
        synchronized (this) {
            done.set(first, first + n);
        }
    }

    private void writeMap(int first, int n) throws IOException {
        ByteBuffer ones = ByteBuffer.allocate(n);
        Arrays.fill(ones.array(), (byte) 1);
        while (ones.hasRemaining()) {
            ranges.write(ones, HEADER + first + ones.position());
        }
    }

    /**
     * Hashes the done ranges from {@link #hashed} on, as far as they go without a gap. One
     * thread at a time: a thread that finds another hashing leaves the rest to it, which looks
     * again before it stops.
     */
    private void hashInOrder() throws IOException {
        if (hashAtEnd) {
            return;
        }
        do {
            if (!hashing.tryLock()) {
                return;
            }
            try {
                if (readBack == null) {
                    readBack = ByteBuffer.allocateDirect(ZERO_RUN);
                }
                while (hashed < count && isDone(hashed)) {
                    hashRange(hashed, readBack);
                    hashed++;
                }
            } finally {
                hashing.unlock();
            }
        } while (hashed < count && isDone(hashed));
    }

    @GuardedBy("hashing")
    private void hashRange(int range, ByteBuffer buffer) throws IOException {
        long position = start(range);
        long end = position + length(range);
        while (position < end) {
            buffer.clear().limit((int) Math.min(buffer.capacity(), end - position));
            int n = upload.read(buffer, position);
            if (n < 0) {
                throw new IOException("the staging file ended at " + position + " of " + size + " bytes");
            }
            inOrder.update(buffer.flip());
            position += n;
        }
    }

    /**
     * The staging file once every range is done, carrying the digest hashed in order (the ranges
     * an earlier run fetched are read back now), for placing it as any upload.
     */
    public Upload completed() throws IOException {
        if (bytesDone() != size) {
            throw new IllegalStateException("a download with ranges missing cannot be placed");
        }
        hashAtEnd = false;
        hashInOrder();
        hashing.lock();
        try {
            if (hashed != count) {
                throw new IllegalStateException("ranges done but not hashed: " + hashed + " of " + count);
            }
            upload.hashedByWriter(Digest.of(inOrder.digest()));
        } finally {
            hashing.unlock();
        }
        return upload;
    }

    /**
     * Drops the range map and empties the staging file: the caller writes the whole blob from the
     * start through {@link #upload()} (a server that ignores Range), and a later run starts over.
     */
    public void restartWhole() throws IOException {
        Files.deleteIfExists(rangesFile);
        synchronized (this) {
            done.clear();
        }
        upload.truncate(0);
    }

    /** Reads the staging file as it is now (a range not done reads as zeros or as bytes not yet recorded). */
    public int read(ByteBuffer into, long offset) throws IOException {
        return upload.read(into, offset);
    }

    /**
     * A read-only channel of the staging file, for a reader that outlives the download: placing
     * the file renames it, so the channel goes on reading the placed blob.
     */
    public FileChannel openForReading() throws IOException {
        return FileChannel.open(upload.file(), StandardOpenOption.READ);
    }

    /** The format probe over the staging file as it is now: for a download whose first ranges are done. */
    public io.vimgfs.store.format.ProbeResult probe() throws IOException {
        return io.vimgfs.store.format.FormatProbe.probe(upload.channel());
    }

    /** The staging file, for writing it whole or for placing it ({@link ImageStore#placeArtifact} consumes it). */
    public Upload upload() {
        return upload;
    }

    /** Removes both files: the blob was placed, or its bytes were refused. */
    public void discard() throws IOException {
        close();
        upload.abandon();
        Files.deleteIfExists(rangesFile);
    }

    /** Releases the files and keeps them, so the same pull run again resumes. */
    @Override
    public void close() throws IOException {
        try {
            ranges.close();
        } finally {
            upload.close();
        }
    }

    /** Whether a staging file's name is a download's (data or range map), which gc keeps for a while. */
    static boolean isDownloadFile(Path file) {
        String name = file.getFileName().toString();
        return name.endsWith(DATA_SUFFIX) || name.endsWith(RANGES_SUFFIX) || name.endsWith(RANGES_SUFFIX + ".tmp");
    }

    /** The staging file a download's range map belongs to (the file itself for a staging file). */
    static Path dataFileOf(Path file) {
        String name = file.getFileName().toString();
        int dot = name.indexOf('.');
        return file.resolveSibling((dot < 0 ? name : name.substring(0, dot)) + DATA_SUFFIX);
    }
}
