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

    /**
     * The file whose bytes from {@code offset} are the disk's, once every byte of the range is
     * verified (fetching what is missing); empty when the export has no such file, and the server
     * then asks {@link #read}. The server sends from the file without copying it (sendfile).
     */
    default java.util.Optional<java.nio.channels.FileChannel> fileFor(long offset, int length) throws IOException {
        return java.util.Optional.empty();
    }
}
