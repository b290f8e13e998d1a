package io.vimgfs.store;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * What the store knows about one image: its bytes' digest and size, what the probe found in them,
 * when it was placed, and the names that point at it (empty for a base kept only as a backing).
 */
public record ImageInfo(
        Digest digest,
        long size,
        ImageFormat format,
        long virtualSize,
        int clusterSize,
        Optional<Digest> backing,
        Instant created,
        List<ImageName> names) {

    public ImageInfo {
        names = List.copyOf(names);
    }
}
