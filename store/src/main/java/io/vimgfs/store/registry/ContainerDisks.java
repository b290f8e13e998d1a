package io.vimgfs.store.registry;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Optional;

/**
 * The disk of a KubeVirt containerDisk whose layers are already at hand (pushed to
 * {@code vimgfs serve}), placed as {@code vimgfs pull} places one: layers applied in order,
 * whiteouts included, the one file under {@code disk/} hashed, probed and named.
 */
public final class ContainerDisks {
    private ContainerDisks() {
    }

    /**
     * Places the disk under {@code name}, or returns empty when the layers hold no file under
     * {@code disk/} (an ordinary container image). A hostile or malformed disk is refused as a
     * pull refuses it ({@link io.vimgfs.store.ImageRejectedException}); more than one disk file is a
     * {@link RegistryException}. Each stream is one layer, compressed or not, read to its end.
     */
    public static Optional<ImageInfo> place(ImageStore store, List<InputStream> layers, Reference name, String display)
            throws IOException {
        try (ContainerDiskLayers disk = new ContainerDiskLayers(store, display)) {
            for (InputStream layer : layers) {
                disk.apply(Decompression.byMagic(layer));
            }
            if (disk.isEmpty()) {
                return Optional.empty();
            }
            return Optional.of(store.place(disk.theDisk(), name));
        }
    }
}
