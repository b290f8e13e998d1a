package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.FileStore;

/** Space on the filesystem holding the store, and how much of it the store's images use. */
public record StoreStats(long totalBytes, long freeBytes, long availableBytes, long blockSize,
        int images, int names, long imageBytes) {
    static StoreStats of(FileStore filesystem, Catalog catalog) throws IOException {
        long imageBytes = catalog.images().stream().mapToLong(StoredImage::size).sum();
        return new StoreStats(filesystem.getTotalSpace(), filesystem.getUnallocatedSpace(), filesystem.getUsableSpace(),
                filesystem.getBlockSize(), catalog.images().size(), catalog.names().size(), imageBytes);
    }
}
