package io.vimgfs.store.registry;

import com.github.luben.zstd.ZstdInputStream;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;
import org.tukaani.xz.XZInputStream;

/** Undoes the compression of a layer: by its magic bytes (image layers) or its file name (machine-os disks). */
final class Decompression {
    private Decompression() {
    }

    /** gzip, zstd or xz by magic; anything else is passed through (an uncompressed tar). */
    static InputStream byMagic(InputStream raw) throws IOException {
        BufferedInputStream in = new BufferedInputStream(raw, 1 << 16);
        in.mark(8);
        byte[] magic = in.readNBytes(6);
        in.reset();
        if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
            return new GzipCompressorInputStream(in, true);
        }
        if (magic.length >= 4 && (magic[0] & 0xff) == 0x28 && (magic[1] & 0xff) == 0xb5 && (magic[2] & 0xff) == 0x2f
                && (magic[3] & 0xff) == 0xfd) {
            return new ZstdInputStream(in);
        }
        if (magic.length >= 6 && (magic[0] & 0xff) == 0xfd && magic[1] == '7' && magic[2] == 'z' && magic[3] == 'X'
                && magic[4] == 'Z' && magic[5] == 0) {
            return new XZInputStream(in);
        }
        return in;
    }

    /** By the extension podman's machine-os artifacts use in their title: {@code .zst}, {@code .xz}, {@code .gz}. */
    static InputStream byName(String fileName, InputStream raw) throws IOException {
        String name = fileName.toLowerCase(Locale.ROOT);
        InputStream in = new BufferedInputStream(raw, 1 << 16);
        if (name.endsWith(".zst") || name.endsWith(".zstd")) {
            return new ZstdInputStream(in);
        }
        if (name.endsWith(".xz")) {
            return new XZInputStream(in);
        }
        if (name.endsWith(".gz")) {
            return new GzipCompressorInputStream(in, true);
        }
        return in;
    }

    /** The name without its compression extension. */
    static String stripExtension(String fileName) {
        for (String ext : new String[] {".zst", ".zstd", ".xz", ".gz"}) {
            if (fileName.toLowerCase(Locale.ROOT).endsWith(ext)) {
                return fileName.substring(0, fileName.length() - ext.length());
            }
        }
        return fileName;
    }
}
