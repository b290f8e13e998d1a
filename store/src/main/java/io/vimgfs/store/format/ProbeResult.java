package io.vimgfs.store.format;

import io.vimgfs.store.ImageFormat;
import java.util.Objects;
import java.util.Optional;

/**
 * What probing an image found: its format, the size the guest sees, the QCOW2 cluster size
 * ({@code 0} for other formats), and the backing file name and the QEMU driver name of its format
 * exactly as the image stores them (a backing format only with a backing file).
 */
public record ProbeResult(ImageFormat format, long virtualSize, int clusterSize, Optional<String> backingFile,
        Optional<String> backingFormat) {

    public ProbeResult {
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(backingFile, "backingFile");
        Objects.requireNonNull(backingFormat, "backingFormat");
    }

    /** A result for a format without clusters or backing files. */
    static ProbeResult of(ImageFormat format, long virtualSize) {
        return new ProbeResult(format, virtualSize, 0, Optional.empty(), Optional.empty());
    }
}
