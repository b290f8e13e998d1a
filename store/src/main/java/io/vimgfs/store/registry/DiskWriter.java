package io.vimgfs.store.registry;

import io.vimgfs.store.Upload;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;

/** Copies a disk's bytes from a stream into an upload, leaving runs of zeros as holes (as import does). */
final class DiskWriter {
    private static final int CHUNK = 1 << 20;
    private static final byte[] ZEROS = new byte[CHUNK];

    private DiskWriter() {
    }

    /** Copies to the end of {@code in}; returns the bytes copied. */
    static long copy(InputStream in, Upload upload) throws IOException {
        byte[] chunk = new byte[CHUNK];
        long position = 0;
        int n;
        while ((n = in.readNBytes(chunk, 0, chunk.length)) > 0) {
            if (Arrays.mismatch(chunk, 0, n, ZEROS, 0, n) >= 0) {
                upload.write(ByteBuffer.wrap(chunk, 0, n), position);
            }
            position += n;
        }
        upload.truncate(position);
        return position;
    }
}
