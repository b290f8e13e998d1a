package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import java.nio.charset.StandardCharsets;

/**
 * Inode numbers that survive remounts: an image's comes from its digest, any other entry's from
 * a 64-bit hash of its path. Numbers below 16 are avoided (1 is the root by convention).
 */
final class Inodes {
    static final long ROOT = 1;

    private Inodes() {
    }

    static long ofDigest(Digest digest) {
        return fold(Long.parseUnsignedLong(digest.hex().substring(0, 16), 16));
    }

    /** FNV-1a over the path's UTF-8 bytes, then splitmix64's finaliser: cheap, and the same on every mount. */
    static long ofPath(String path) {
        if (path.equals("/")) {
            return ROOT;
        }
        long hash = 0xcbf29ce484222325L;
        for (byte b : path.getBytes(StandardCharsets.UTF_8)) {
            hash = (hash ^ (b & 0xff)) * 0x100000001b3L;
        }
        hash = (hash ^ (hash >>> 30)) * 0xbf58476d1ce4e5b9L;
        hash = (hash ^ (hash >>> 27)) * 0x94d049bb133111ebL;
        return fold(hash ^ (hash >>> 31));
    }

    private static long fold(long bits) {
        long positive = bits & Long.MAX_VALUE;
        return positive < 16 ? positive + 16 : positive;
    }
}
