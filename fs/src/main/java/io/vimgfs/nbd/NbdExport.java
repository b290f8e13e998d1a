package io.vimgfs.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;

/** One read-only disk an {@link NbdServer} serves under a name. */
public interface NbdExport {
    /** The disk's size in bytes. */
    long size();

    /**
     * Fills {@code into} (its remaining bytes) with the disk's bytes from {@code offset}; every byte
     * handed out must be one the export has verified. An IOException fails that request with EIO.
     */
    void read(ByteBuffer into, long offset) throws IOException;
}
