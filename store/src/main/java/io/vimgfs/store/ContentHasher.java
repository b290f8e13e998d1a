package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.Queue;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.function.LongConsumer;

/**
 * SHA-256 of a file being written, computed while writes arrive in order. A gap between writes is
 * hashed as zeros (a sparse copy skips holes); a write below what was already hashed, or a
 * truncation below it, makes the running hash unusable and {@link #finish} re-reads the file.
 *
 * <p>The hashing runs on a small pool shared by every upload, fed copies of the written bytes: the
 * writer pays a copy instead of the hash, so on two cores writing and hashing overlap. An idle
 * upload holds no thread and no buffer (thousands of staged files once meant thousands of threads
 * and buffers, and an OutOfMemoryError). Queued bytes are bounded per upload and in all, which
 * holds back a writer that outruns the hash.
 */
final class ContentHasher {
    private static final int CHUNK = 1 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(CHUNK).asReadOnlyBuffer();
    private static final int BUFFER = 128 * 1024;
    /** Pieces one upload may have waiting: a FUSE write is at most 128 KiB, so ~1 MiB. */
    private static final int QUEUED_PER_UPLOAD = 8;
    /** Pieces all uploads together may have waiting (8 MiB of 128 KiB writes). */
    private static final Semaphore QUEUED_IN_ALL = new Semaphore(64, true);
    /** Buffers kept for reuse between pieces; any more are left to the garbage collector. */
    private static final BlockingQueue<byte[]> SPARE = new ArrayBlockingQueue<>(64);
    /** Pieces hashed per turn on the pool before giving another upload its turn. */
    private static final int TURN = 16;
    private static final ExecutorService POOL = Executors.newFixedThreadPool(
            Math.max(1, Runtime.getRuntime().availableProcessors()), runnable -> {
                Thread thread = new Thread(runnable, "vimgfs-hash");
                thread.setDaemon(true);
                return thread;
            });

    /** A copy of written bytes, or a run of zeros (bytes null). */
    private record Piece(byte[] bytes, int length, long zeros) {
    }

    private final MessageDigest sha256 = BlobFiles.newSha256();
    private final Semaphore room = new Semaphore(QUEUED_PER_UPLOAD);
    @GuardedBy("this")
    private final Queue<Piece> queue = new ArrayDeque<>();
    /** Whether a turn of this hasher is queued or running. */
    @GuardedBy("this")
    private boolean scheduled;
    private long hashed;
    private boolean inOrder = true;

    /** Records that {@code data} (position to limit) was written at {@code offset}. */
    void wrote(ByteBuffer data, long offset) {
        if (!inOrder) {
            return;
        }
        if (offset < hashed) {
            inOrder = false;
            stop();
            return;
        }
        if (offset > hashed) {
            feed(new Piece(null, 0, offset - hashed));
        }
        int length = data.remaining();
        byte[] copy = SPARE.poll();
        if (copy == null || copy.length < length) {
            copy = new byte[Math.max(length, BUFFER)];
        }
        data.get(copy, 0, length);
        feed(new Piece(copy, length, 0));
        hashed = offset + length;
    }

    /** A truncation below what was hashed; {@code -1} also for a file whose existing bytes were never fed here. */
    void truncated(long size) {
        if (size < hashed) {
            inOrder = false;
            stop();
        }
    }

    boolean inOrder() {
        return inOrder;
    }

    /** The digest of the file's {@code size} bytes, re-reading it if writes came out of order. */
    Digest finish(FileChannel file, long size, LongConsumer progress) throws IOException {
        if (inOrder && size >= hashed) {
            if (size > hashed) {
                feed(new Piece(null, 0, size - hashed));
            }
            stop();
            return Digest.of(sha256.digest());
        }
        stop();
        return hash(file, size, progress);
    }

    /** Waits until everything queued has been hashed. */
    void stop() {
        boolean interrupted = false;
        synchronized (this) {
            while (scheduled) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void feed(Piece piece) {
        room.acquireUninterruptibly();
        QUEUED_IN_ALL.acquireUninterruptibly();
        synchronized (this) {
            queue.add(piece);
            if (scheduled) {
                return;
            }
            scheduled = true;
        }
        POOL.execute(this::hashTurn);
    }

    /** Hashes up to {@link #TURN} pieces, then yields the pool thread to other uploads. */
    private void hashTurn() {
        for (int i = 0; i < TURN; i++) {
            Piece piece;
            synchronized (this) {
                piece = queue.poll();
                if (piece == null) {
                    scheduled = false;
                    notifyAll();
                    return;
                }
            }
            if (piece.bytes() == null) {
                hashZeros(piece.zeros());
            } else {
                sha256.update(piece.bytes(), 0, piece.length());
                SPARE.offer(piece.bytes());
            }
            QUEUED_IN_ALL.release();
            room.release();
        }
        POOL.execute(this::hashTurn); // still scheduled: pieces remain
    }

    /** Hashes a whole file with positional reads. */
    static Digest hash(FileChannel file, long size, LongConsumer progress) throws IOException {
        MessageDigest digest = BlobFiles.newSha256();
        ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
        long position = 0;
        while (position < size) {
            buffer.clear();
            buffer.limit((int) Math.min(CHUNK, size - position));
            int n = file.read(buffer, position);
            if (n < 0) {
                throw new IOException("file ended at " + position + " of " + size + " bytes while hashing");
            }
            buffer.flip();
            digest.update(buffer);
            position += n;
            progress.accept(n);
        }
        return Digest.of(digest.digest());
    }

    private void hashZeros(long count) {
        long left = count;
        while (left > 0) {
            ByteBuffer zeros = ZEROS.duplicate();
            zeros.limit((int) Math.min(CHUNK, left));
            left -= zeros.remaining();
            sha256.update(zeros);
        }
    }
}
