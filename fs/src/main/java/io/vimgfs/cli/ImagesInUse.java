package io.vimgfs.cli;

import io.vimgfs.store.ImagePaths;
import io.vimgfs.store.ImageUse;
import io.vimgfs.store.StoreDirectory;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Set;

/**
 * Which processes have which of the store's images open, as status shows them: by the blob, or
 * by a mount's by-digest entry for images the daemon serves ({@code -o data=fuse}). The scan is
 * the store's own ({@link StoreDirectory#imagesInUse}), the one the keep rule asks.
 */
final class ImagesInUse {
    private ImagesInUse() {
    }

    /** Every (image, process) pair, once each; this process and the daemons in {@code skip} (they serve, not use) are left out. */
    static List<ImageUse> scan(StoreDirectory store, Collection<Path> mountpoints, Set<Long> skip) {
        long self = ProcessHandle.current().pid();
        try {
            return store.imagesInUse(mountpoints.stream().map(m -> m.resolve(ImagePaths.DIGEST_DIR)).toList()).stream()
                    .filter(u -> u.pid() != self && !skip.contains(u.pid())).toList();
        } catch (IOException e) {
            return List.of(); // no /proc to read: nothing to show
        }
    }
}
