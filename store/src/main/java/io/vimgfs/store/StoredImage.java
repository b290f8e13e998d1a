package io.vimgfs.store;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/** One image as the layout holds it: its manifest and config blobs, and the layer they describe. */
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
        Digest config) {

    ImageInfo info(List<ImageName> names) {
        return new ImageInfo(layer, size, format, virtualSize, clusterSize, backing, created, names);
    }
}
