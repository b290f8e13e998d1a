package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Inode numbers that survive remounts: an image's comes from its digest, any other entry's from
 * the SHA-256 of its path. Numbers below 16 are avoided (1 is the root by convention).
 */
final class Inodes {
    static final long ROOT = 1;

    private Inodes() {
    }

    static long ofDigest(Digest digest) {
        return fold(Long.parseUnsignedLong(digest.hex().substring(0, 16), 16));
    }

    static long ofPath(String path) {
        if (path.equals("/")) {
            return ROOT;
        }
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(path.getBytes(StandardCharsets.UTF_8));
            return fold(ByteBuffer.wrap(hash).getLong());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long fold(long bits) {
        long positive = bits & Long.MAX_VALUE;
        return positive < 16 ? positive + 16 : positive;
    }
}
