package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.util.function.LongConsumer;

/**
 * SHA-256 of a file being written, computed inline while writes arrive in order. A gap between
 * writes is hashed as zeros (a sparse copy skips holes); a write below what was already hashed,
 * or a truncation below it, makes the inline hash unusable and {@link #finish} re-reads the file.
 */
final class ContentHasher {
    private static final int CHUNK = 1 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(CHUNK).asReadOnlyBuffer();

    private final MessageDigest sha256 = BlobFiles.newSha256();
    private long hashed;
    private boolean inOrder = true;

    /** Records that {@code data} (position to limit) was written at {@code offset}. */
    void wrote(ByteBuffer data, long offset) {
        if (!inOrder) {
            return;
        }
        if (offset < hashed) {
            inOrder = false;
            return;
        }
        hashZeros(offset - hashed);
        hashed += data.remaining();
        sha256.update(data);
    }

    void truncated(long size) {
        if (size < hashed) {
            inOrder = false;
        }
    }

    boolean inOrder() {
        return inOrder;
    }

    /** The digest of the file's {@code size} bytes, re-reading it if writes came out of order. */
    Digest finish(FileChannel file, long size, LongConsumer progress) throws IOException {
        if (inOrder && size >= hashed) {
            hashZeros(size - hashed);
            return Digest.of(sha256.digest());
        }
        return hash(file, size, progress);
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
        hashed += count;
    }
}
