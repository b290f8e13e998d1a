package io.vimgfs.store;

/** Space on the filesystem holding the store, and how much of it the store's images use. */
public record StoreStats(long totalBytes, long freeBytes, long availableBytes, long blockSize,
        int images, int names, long imageBytes) {
}
