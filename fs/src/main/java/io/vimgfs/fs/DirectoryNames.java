package io.vimgfs.fs;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The names of the last directory listed, as NUL-terminated C strings in one direct buffer, ready
 * for libfuse's filler. jnr-fuse's {@code FuseFillDir.apply(…, String, …)} encodes each name into a
 * heap buffer that jnr then copies to native memory and back, per name; a direct buffer is passed
 * by address. A listing the catalog has not changed since (the same list, {@link ImageTree}) is
 * not encoded again: {@code find} and {@code ls} list a directory of 10,000 names again and again.
 */
final class DirectoryNames {
    private record Encoded(List<String> names, List<ByteBuffer> buffers) {
    }

    private static volatile Encoded last;

    private DirectoryNames() {
    }

    /** The names as C strings, each a buffer of its own (position 0, limit past the NUL). */
    static List<ByteBuffer> of(List<String> names) {
        Encoded cached = last;
        if (cached != null && cached.names() == names) {
            return cached.buffers();
        }
        List<ByteBuffer> buffers = encode(names);
        last = new Encoded(names, buffers);
        return buffers;
    }

    static List<ByteBuffer> encode(List<String> names) {
        List<byte[]> bytes = new ArrayList<>(names.size());
        int total = 0;
        for (String name : names) {
            byte[] encoded = name.getBytes(StandardCharsets.UTF_8);
            bytes.add(encoded);
            total += encoded.length + 1;
        }
        ByteBuffer all = ByteBuffer.allocateDirect(Math.max(1, total));
        List<ByteBuffer> buffers = new ArrayList<>(names.size());
        for (byte[] encoded : bytes) {
            int start = all.position();
            all.put(encoded).put((byte) 0);
            buffers.add(all.duplicate().position(start).limit(all.position()).slice());
        }
        return List.copyOf(buffers);
    }
}
