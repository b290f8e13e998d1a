package io.vimgfs.store;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * One image as the layout holds it: its manifest and config blobs, the layer they describe, and
 * the layer's chunk index when its manifest carries one ({@link ChunkIndex}).
 */
record StoredImage(
        Digest layer,
        long size,
        ImageFormat format,
        long virtualSize,
        int clusterSize,
        Optional<Digest> backing,
        Instant created,
        Digest manifest,
        long manifestSize,
        Digest config,
        Optional<Digest> chunks) {

    StoredImage(Digest layer, long size, ImageFormat format, long virtualSize, int clusterSize, Optional<Digest> backing,
            Instant created, Digest manifest, long manifestSize, Digest config) {
        this(layer, size, format, virtualSize, clusterSize, backing, created, manifest, manifestSize, config,
                Optional.empty());
    }

    StoredImage withChunks(Digest index) {
        return new StoredImage(layer, size, format, virtualSize, clusterSize, backing, created, manifest, manifestSize,
                config, Optional.of(index));
    }

    /** Every blob the image needs: manifest, config, layer and chunk index. */
    List<Digest> blobs() {
        return chunks.isPresent() ? List.of(manifest, config, layer, chunks.get()) : List.of(manifest, config, layer);
    }

    ImageInfo info(List<ImageName> names) {
        return new ImageInfo(layer, size, format, virtualSize, clusterSize, backing, created, names);
    }
}
