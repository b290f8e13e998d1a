package io.vimgfs.fs;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import java.util.List;
import java.util.Optional;

/** An entry of the read-only part of the tree: a directory, an image file, or a name's link. */
sealed interface Node {

    /** A directory; {@code children} is null where they are listed from the catalog on demand. */
    record Directory(String path, List<String> children, int subdirectories, long inode) implements Node {
    }

    /** {@code by-digest/sha256/<hex>}: the image's bytes. */
    record ImageFile(ImageInfo image) implements Node {
    }

    /**
     * {@code by-name/…} and {@code tags/…}: a relative link to an image file. {@code name} is
     * empty for the bare-digest links that resolve in every name directory (SPEC §6).
     */
    record Link(String path, String target, ImageInfo image, Optional<ImageName> name, long inode) implements Node {
    }
}
