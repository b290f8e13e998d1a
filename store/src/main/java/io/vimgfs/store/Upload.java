package io.vimgfs.store;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongConsumer;

/**
 * A file being written into the store's staging area, hashed as it is written. It becomes an
 * image only through {@link ImageStore#place}; until then it is invisible to every reader.
 * While open it holds a lock on its staging file, which tells garbage collection (in this or
 * another process) that the file is still being written.
 *
 * <p>Sealing freezes it: the bytes that were hashed are the bytes that get placed, so a write or
 * truncation after the seal fails instead of changing a blob under its digest (SPEC §2).
 *
 * <p>Every {@value #WRITEBACK_BYTES} bytes written, a background thread asks the kernel to write
 * the file back ({@code fdatasync}), so the disk works while the bytes still arrive and the seal's
 * fsync waits only for the tail: the kernel's own writeback starts only at a tenth of RAM dirty, so
 * a multi-GiB pull or copy otherwise paid its whole disk write after the last byte came in.
 */
public final class Upload implements Closeable {
    private static final Set<Path> OPEN_HERE = ConcurrentHashMap.newKeySet();
    static final long WRITEBACK_BYTES = 64L << 20;
    private static final ExecutorService WRITEBACK = Executors.newSingleThreadExecutor(runnable -> {
        Thread thread = new Thread(runnable, "vimgfs-writeback");
        thread.setDaemon(true);
        return thread;
    });

    private static final int COPY_CHUNK = 1 << 20;
    private static final byte[] ZEROS = new byte[COPY_CHUNK];

    private final Path file;
    private final FileChannel channel;
    private final FileLock ownership;
    private final ContentHasher hasher = new ContentHasher();
    private volatile long size;
    @GuardedBy("this")
    private boolean closed;
    /** Where the next background writeback is due, and whether one is queued or running. */
    @GuardedBy("this")
    private long writebackAt = WRITEBACK_BYTES;
    private final AtomicBoolean writingBack = new AtomicBoolean();
    /** Set by {@link #seal}: the length and modification time the hashed file had. */
    @GuardedBy("this")
    private BasicFileAttributes sealedAs;
    /** Set by {@link #hashedByWriter}: the file's digest, so the seal need not read it again. */
    @GuardedBy("this")
    private Digest hashedByWriter;
    /** What {@link #seal} found; sealing again returns it. */
    private Digest sealedDigest;
    /** Whether {@link #sync} ran: the sealed bytes are on disk. */
    @GuardedBy("this")
    private boolean synced;

    private Upload(Path file, FileChannel channel, FileLock ownership) {
        this.file = file;
        this.channel = channel;
        this.ownership = ownership;
    }

    /** Creates and locks the staging file at once, so garbage collection never sees it unlocked but for an instant. */
    static Upload create(Path file) throws IOException {
        OPEN_HERE.add(file);
        try {
            FileChannel channel = FileChannel.open(file, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                    StandardOpenOption.WRITE), StorePermissions.privateFile());
            try {
                return new Upload(file, channel, channel.lock());
            } catch (IOException | RuntimeException e) {
                channel.close();
                Files.deleteIfExists(file);
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            OPEN_HERE.remove(file);
            throw e;
        }
    }

    /**
     * Opens (or creates) a staging file that outlives its writer, a resumable download's, and
     * locks it; the bytes already there are kept. Its hash is computed from the file when it is
     * sealed, since those bytes were never seen here. Fails when another writer holds it.
     */
    static Upload resume(Path file) throws IOException {
        if (!OPEN_HERE.add(file)) {
            throw new IOException("another pull in this process is writing " + file.getFileName());
        }
        try {
            FileChannel channel = FileChannel.open(file, Set.of(StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE), StorePermissions.privateFile());
            try {
                FileLock lock = channel.tryLock();
                if (lock == null) {
                    throw new IOException("another process is pulling the same blob into " + file.getFileName()
                            + "; wait for it to finish or stop it");
                }
                Upload upload = new Upload(file, channel, lock);
                upload.size = channel.size();
                upload.hasher.truncated(-1);
                return upload;
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            OPEN_HERE.remove(file);
            throw e;
        }
    }

    /**
     * Whether an upload of this JVM has the file open. Garbage collection must ask this before it
     * opens the file: closing any descriptor of a file drops the process's POSIX lock on it, and
     * with it the upload's claim against gc in other processes.
     */
    static boolean isOpenHere(Path file) {
        return OPEN_HERE.contains(file);
    }

    /** Writes all of {@code data} at {@code offset}; returns the bytes written. */
    public synchronized int write(ByteBuffer data, long offset) throws IOException {
        requireNotSealed();
        hashedByWriter = null;
        ByteBuffer forHash = data.duplicate();
        int total = 0;
        while (data.hasRemaining()) {
            total += channel.write(data, offset + total);
        }
        hasher.wrote(forHash, offset);
        size = Math.max(size, offset + total);
        if (size >= writebackAt) {
            writebackAt = size + WRITEBACK_BYTES;
            startWriteback();
        }
        return total;
    }

    private void startWriteback() {
        if (!writingBack.compareAndSet(false, true)) {
            return; // one is still running: the next mark catches up
        }
        WRITEBACK.execute(() -> {
            try {
                channel.force(false);
            } catch (IOException e) {
                // closed meanwhile, or an I/O error the seal's own fsync reports
            } finally {
                writingBack.set(false);
            }
        });
    }

    /** Makes every byte written so far durable ({@code fdatasync}), for a writer that records its progress. */
    public void force() throws IOException {
        channel.force(false);
    }

    /** Reads what was written so far (a writer may read back its own file). */
    public int read(ByteBuffer into, long offset) throws IOException {
        return channel.read(into, offset);
    }

    /** What was written so far, as a stream from the start (positional reads: the upload's writer is not disturbed). */
    public InputStream inputStream() {
        return new InputStream() {
            private long position;

            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] into, int offset, int length) throws IOException {
                int n = Upload.this.read(ByteBuffer.wrap(into, offset, length), position);
                if (n > 0) {
                    position += n;
                }
                return n;
            }
        };
    }

    public synchronized void truncate(long newSize) throws IOException {
        requireNotSealed();
        hashedByWriter = null;
        if (newSize < size) {
            channel.truncate(newSize);
        } else if (newSize > size) {
            // FileChannel.truncate never grows a file; a one-byte write at the end does, leaving a hole.
            channel.write(ByteBuffer.wrap(new byte[1]), newSize - 1);
        }
        hasher.truncated(newSize);
        size = newSize;
    }

    /**
     * Writes everything {@code in} holds from offset 0, leaving each 1 MiB run of zeros a hole
     * (import, pull and URL downloads alike), and sets the length; returns the bytes copied.
     */
    public long copyFrom(InputStream in, LongConsumer progress) throws IOException {
        byte[] chunk = new byte[COPY_CHUNK];
        long position = 0;
        int n;
        while ((n = in.readNBytes(chunk, 0, chunk.length)) > 0) {
            if (Arrays.mismatch(chunk, 0, n, ZEROS, 0, n) >= 0) {
                write(ByteBuffer.wrap(chunk, 0, n), position);
            }
            position += n;
            progress.accept(n);
        }
        truncate(position);
        return position;
    }

    /** The file's length; never waits for a write or a seal in progress. */
    public long size() {
        return size;
    }

    /** True while every write has come in order, so placing needs no re-read. */
    public synchronized boolean hashedInline() {
        return hasher.inOrder();
    }

    /**
     * Freezes the file and hashes what remains; the file stays staged. The bytes are not yet
     * durable: {@link #sync} makes them so, and only content the store lacks needs it (a name
     * given to stored content places no bytes).
     */
    synchronized Digest seal(LongConsumer progress) throws IOException {
        if (sealedDigest == null) {
            sealedAs = Files.readAttributes(file, BasicFileAttributes.class); // frozen from here on
            if (hashedByWriter != null) {
                hasher.stop();
                sealedDigest = hashedByWriter;
            } else {
                sealedDigest = hasher.finish(channel, size, progress);
            }
        }
        return sealedDigest;
    }

    /**
     * Freezes the file and returns its digest, as placing does first: a registry checks a pushed
     * blob against the digest its client names before anything refers to it. Placing it later
     * hashes nothing again.
     */
    public Digest seal() throws IOException {
        return seal(n -> { });
    }

    /**
     * The digest of the file as it is now, which its writer computed by reading it back after
     * the last write ({@link PartialDownload}, hashing ranges in order as they complete); the
     * seal uses it instead of hashing the file again. Any later write or truncation drops it.
     */
    synchronized void hashedByWriter(Digest digest) {
        hashedByWriter = digest;
    }

    /** Makes the sealed bytes durable (fsync), once; a later call costs nothing. */
    synchronized void sync() throws IOException {
        if (!synced) {
            channel.force(true);
            synced = true;
        }
    }

    /**
     * Before publishing: the staged file still has the length and modification time it had when it
     * was sealed. Within this JVM the seal already forbids writes; this catches anything writing the
     * staging file behind the store's back, at the cost of one stat instead of a second full read.
     */
    synchronized void verifySealed() throws IOException {
        BasicFileAttributes now = Files.readAttributes(file, BasicFileAttributes.class);
        if (sealedAs == null || now.size() != size || sealedAs.size() != size
                || !now.lastModifiedTime().equals(sealedAs.lastModifiedTime())) {
            throw new IOException("staging file " + file.getFileName() + " changed after it was hashed: not placed");
        }
    }

    private void requireNotSealed() throws IOException {
        if (sealedAs != null) {
            throw new IOException("upload already sealed for placing: its bytes can no longer change");
        }
    }

    FileChannel channel() {
        return channel;
    }

    Path file() {
        return file;
    }

    /** Drops the staged bytes; nothing was placed. */
    public synchronized void abandon() throws IOException {
        close();
        Files.deleteIfExists(file);
    }

    /** Releases the file; a file not yet placed is left for garbage collection. */
    @Override
    public synchronized void close() throws IOException {
        if (!closed) {
            closed = true;
            hasher.stop();
            try {
                ownership.release();
            } finally {
                channel.close();
                OPEN_HERE.remove(file);
            }
        }
    }
}
