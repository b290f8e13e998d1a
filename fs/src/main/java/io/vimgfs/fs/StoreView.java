package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The store as this mount shows it: how image bytes reach readers ({@link DataMode}), the
 * attributes of each kind of entry, the {@code user.vimgfs.*} attributes, and the changes the
 * tree's entries ask of the store (untag, remove), each logged once.
 */
final class StoreView {
    private static final System.Logger LOG = System.getLogger(StoreView.class.getName());
    static final String XATTR_PREFIX = "user.vimgfs.";
    private static final List<String> XATTRS = List.of("user.vimgfs.digest", "user.vimgfs.format",
            "user.vimgfs.virtual_size", "user.vimgfs.names", "user.vimgfs.backing");

    private final ImageStore store;
    private final DataMode mode;
    private final Instant mounted;
    private final Allocation allocation;

    StoreView(ImageStore store, DataMode mode, Instant mounted) {
        this.store = store;
        this.mode = mode;
        this.mounted = mounted;
        this.allocation = new Allocation(store::imagePath);
    }

    ImageStore store() {
        return store;
    }

    DataMode mode() {
        return mode;
    }

    Attr directoryAttr(long inode, int subdirectories) {
        return new Attr(Attr.Kind.DIRECTORY, 0755, 4096, 8, inode, mounted, 2 + subdirectories);
    }

    Attr imageAttr(ImageInfo image) {
        return new Attr(Attr.Kind.FILE, 0444, image.size(), allocation.blocks(image.digest(), image.size()),
                Inodes.ofDigest(image.digest()), image.created(), 1);
    }

    Attr linkAttr(String target, long inode, ImageInfo image) {
        return new Attr(Attr.Kind.SYMLINK, 0777, target.getBytes(StandardCharsets.UTF_8).length, 0, inode,
                image.created(), 1);
    }

    static Attr uploadAttr(IncomingFile file) {
        long size = file.size();
        return new Attr(Attr.Kind.FILE, file.mode(), size, (size + 511) / 512, file.inode(), file.modified(), 1);
    }

    /** The absolute path of an image's blob: what {@code by-digest/} links point at by default. */
    String blobTarget(Digest digest) {
        return store.imagePath(digest).toString();
    }

    OpenFile openImage(ImageInfo image) throws IOException {
        return new OpenFile.ImageHandle(imageAttr(image), store.openImage(image.digest()), image.digest(), store);
    }

    byte[] xattr(ImageInfo image, String name) throws FsException {
        String value = switch (name.startsWith(XATTR_PREFIX) ? name.substring(XATTR_PREFIX.length()) : "") {
            case "digest" -> image.digest().toString();
            case "format" -> image.format().id();
            case "virtual_size" -> Long.toString(image.virtualSize());
            case "names" -> currentNames(image).stream().map(ImageName::toString).collect(Collectors.joining(","));
            case "backing" -> image.backing().map(Digest::toString).orElse(null);
            default -> null;
        };
        if (value == null) {
            throw new FsException(Errno.ENODATA, "no attribute " + name);
        }
        return value.getBytes(StandardCharsets.UTF_8);
    }

    List<String> xattrNames(ImageInfo image) {
        List<String> names = new ArrayList<>(XATTRS);
        if (image.backing().isEmpty()) {
            names.remove("user.vimgfs.backing");
        }
        return names;
    }

    private List<ImageName> currentNames(ImageInfo image) {
        return store.image(image.digest()).map(ImageInfo::names).orElse(image.names());
    }

    void untag(ImageName name, ImageInfo image) throws IOException {
        store.untag(name);
        boolean imageGone = store.image(image.digest()).isEmpty();
        LOG.log(System.Logger.Level.INFO, () -> "untagged " + name + " " + image.digest()
                + (imageGone ? "; image removed with its last name (" + image.size() + " bytes)" : ""));
    }

    void removeImage(ImageInfo image) throws IOException {
        boolean gone = store.removeImage(image.digest());
        LOG.log(System.Logger.Level.INFO, () -> "removed " + image.digest() + " (" + image.size() + " bytes, names "
                + image.names().stream().map(ImageName::toString).collect(Collectors.joining(",")) + ")"
                + (gone ? "" : "; kept without names as the backing of another image"));
    }
}
