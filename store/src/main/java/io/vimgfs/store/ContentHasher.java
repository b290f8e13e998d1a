package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.function.LongConsumer;

/**
 * SHA-256 of a file being written, computed while writes arrive in order. A gap between writes is
 * hashed as zeros (a sparse copy skips holes); a write below what was already hashed, or a
 * truncation below it, makes the running hash unusable and {@link #finish} re-reads the file.
 *
 * <p>The hashing itself runs on a thread of its own, fed copies of the written bytes through a
 * bounded queue: the writer pays a copy instead of the hash, so on two cores writing and hashing
 * overlap. The queue's bound holds back a writer that outruns the hash.
 */
final class ContentHasher {
    private static final int CHUNK = 1 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(CHUNK).asReadOnlyBuffer();
    private static final int QUEUED_CHUNKS = 32;
    private static final Object END = new Object();

    /** A copy of written bytes, or a run of zeros (bytes null). */
    private record Piece(byte[] bytes, int length, long zeros) {
    }

    private final MessageDigest sha256 = BlobFiles.newSha256();
    private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(QUEUED_CHUNKS);
    private final BlockingQueue<byte[]> spare = new ArrayBlockingQueue<>(QUEUED_CHUNKS + 1);
    private Thread worker;
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
        byte[] copy = spare.poll();
        if (copy == null || copy.length < length) {
            copy = new byte[Math.max(length, 128 * 1024)];
        }
        data.get(copy, 0, length);
        feed(new Piece(copy, length, 0));
        hashed = offset + length;
    }

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

    /** Ends the hashing thread, after it has hashed everything queued. */
    void stop() {
        Thread running = worker;
        if (running == null) {
            return;
        }
        worker = null;
        putUninterruptibly(END);
        boolean interrupted = false;
        while (running.isAlive()) {
            try {
                running.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void feed(Piece piece) {
        if (worker == null) {
            worker = new Thread(this::hashQueued, "vimgfs-hash");
            worker.setDaemon(true);
            worker.start();
        }
        putUninterruptibly(piece);
    }

    private void hashQueued() {
        while (true) {
            Object next;
            try {
                next = queue.take();
            } catch (InterruptedException e) {
                continue; // only stop() ends this thread, so nothing queued is ever lost
            }
            if (next == END) {
                return;
            }
            Piece piece = (Piece) next;
            if (piece.bytes() == null) {
                hashZeros(piece.zeros());
            } else {
                sha256.update(piece.bytes(), 0, piece.length());
                spare.offer(piece.bytes());
            }
        }
    }

    private void putUninterruptibly(Object item) {
        boolean interrupted = false;
        while (true) {
            try {
                queue.put(item);
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
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
