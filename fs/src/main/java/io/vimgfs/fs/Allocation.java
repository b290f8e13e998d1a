package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/**
 * How many 512-byte blocks an image really occupies ({@code st_blocks}, for {@code du}). Java's
 * file attributes do not expose it, so it comes from stat(2); an image never changes, so each
 * answer is kept.
 */
final class Allocation {
    private static final POSIX POSIX = POSIXFactory.getNativePOSIX();

    private final Function<Digest, Path> paths;
    private final ConcurrentHashMap<Digest, Long> blocks = new ConcurrentHashMap<>();

    Allocation(Function<Digest, Path> paths) {
        this.paths = paths;
    }

    long blocks(Digest digest, long size) {
        Long known = blocks.get(digest);
        if (known != null) {
            return known;
        }
        try {
            long measured = POSIX.stat(paths.apply(digest).toString()).blocks();
            blocks.put(digest, measured);
            return measured;
        } catch (RuntimeException e) {
            return (size + 511) / 512; // removed meanwhile: the apparent size will do
        }
    }
}
