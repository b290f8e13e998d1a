package io.vimgfs.store;

import java.util.Locale;

/** The disk image formats vimgfs recognises, each with the OCI layer media type it is stored under. */
public enum ImageFormat {
    QCOW2, RAW, VMDK, VHDX, VDI, ISO;

    private static final String MEDIA_TYPE_PREFIX = "application/vnd.vimgfs.disk.";

    /** The lowercase name users see: {@code qcow2}, {@code raw}, … */
    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The QEMU driver that reads this format: an ISO is raw to QEMU (no QEMU probe matches it),
     * so an overlay on a stored ISO must name {@code raw} as its backing format.
     */
    public String qemuDriver() {
        return this == ISO ? RAW.id() : id();
    }

    public String mediaType() {
        return MEDIA_TYPE_PREFIX + id();
    }

    public static ImageFormat ofId(String id) {
        return valueOf(id.toUpperCase(Locale.ROOT));
    }

    public static boolean isDiskMediaType(String mediaType) {
        return mediaType.startsWith(MEDIA_TYPE_PREFIX);
    }

    public static ImageFormat ofMediaType(String mediaType) {
        if (!mediaType.startsWith(MEDIA_TYPE_PREFIX)) {
            throw new IllegalArgumentException("not a vimgfs disk media type: " + mediaType);
        }
        return ofId(mediaType.substring(MEDIA_TYPE_PREFIX.length()));
    }

    @Override
    public String toString() {
        return id();
    }
}
