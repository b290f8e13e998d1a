package io.vimgfs.fs;

/**
 * How the bytes of a placed image reach its readers ({@code -o data=…}).
 *
 * <p>{@link #LINK} (the default): {@code by-digest/sha256/<hex>} is a symlink to the image's
 * blob file in the store, so QEMU reads the disk directly — at the disk's speed, with mmap,
 * O_DIRECT, OFD locks and SEEK_HOLE — and keeps reading through any death or restart of the
 * daemon. The hypervisor's user must be able to reach the store's blobs. {@link #FUSE}: the
 * daemon serves the bytes itself, for stores the hypervisor's user cannot reach.
 */
public enum DataMode {
    LINK("link"), FUSE("fuse");

    private final String option;

    DataMode(String option) {
        this.option = option;
    }

    public String option() {
        return option;
    }

    public static DataMode ofOption(String value) {
        for (DataMode mode : values()) {
            if (mode.option.equals(value)) {
                return mode;
            }
        }
        throw new IllegalArgumentException("-o data=" + value + ": data is 'link' (the default: images are links to"
                + " the store's blob files) or 'fuse' (the daemon serves image bytes)");
    }
}
