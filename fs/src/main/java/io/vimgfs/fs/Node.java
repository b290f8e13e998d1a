package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/**
 * An entry of the tree together with what may be done to it: each kind of entry is its own
 * handler (directories of the tree, image files, links, and the entries of {@code incoming/}),
 * so {@link VimgFs} only resolves a path and delegates. An operation a kind does not support
 * answers the errno its default gives here.
 *
 * <p>Java 17 has no pattern switch, so instead of switching over kinds the behaviour lives on
 * the kinds themselves: there is no cast anywhere in the dispatch.
 */
sealed interface Node permits Node.Directory, Node.ImageFile, Node.BlobLink, Node.NameLink, Node.Hidden,
        Node.IncomingDirectory, Node.IncomingUpload {

    String path();

    Attr attr() throws FsException;

    default String readlink() throws FsException {
        throw new FsException(Errno.EINVAL, path() + " is not a symbolic link");
    }

    default List<String> list() throws FsException {
        throw new FsException(Errno.ENOTDIR, path() + " is not a directory");
    }

    default OpenFile open(int flags) throws IOException, FsException {
        throw new FsException(Errno.EISDIR, path() + " is not a file");
    }

    /** {@code rm}: what removing this entry means for its kind. */
    default void unlink() throws IOException, FsException {
        throw new FsException(Errno.EISDIR, path() + " is a directory");
    }

    default void rmdir() throws FsException {
        throw new FsException(Errno.ENOTDIR, path() + " is not a directory");
    }

    /** Creates the file {@code leaf} in this directory with the given permissions. */
    default OpenFile create(String leaf, int mode) throws IOException, FsException {
        throw new FsException(Errno.EROFS, "new files can only be written into incoming/");
    }

    default void mkdir(String leaf) throws IOException, FsException {
        throw new FsException(Errno.EROFS, "directories can only be made in incoming/");
    }

    /** rename(2): only entries of incoming/ move, and nothing moves into or out of it. */
    default void renameTo(String to) throws IOException, FsException {
        throw new FsException(ImageTree.isIncoming(to) ? Errno.EXDEV : Errno.EROFS, "only files in incoming/ can be renamed");
    }

    default void truncate(long size) throws IOException, FsException {
        throw new FsException(Errno.EROFS, "images are read-only; write new images into incoming/");
    }

    /** chmod, chown, utimens: EROFS on the read-only tree, never ENOSYS. */
    default void setAttributes() throws FsException {
        throw new FsException(Errno.EROFS, path() + " is read-only");
    }

    default byte[] xattr(String name) throws FsException {
        throw new FsException(Errno.ENODATA, "no attribute " + name);
    }

    default List<String> xattrNames() {
        return List.of();
    }

    /**
     * The image whose use a lookup of this entry records (for {@code prune --unused-for}): in
     * link mode reads never reach the daemon, but the lookup that precedes an open does.
     */
    default Optional<Digest> usedImage() {
        return Optional.empty();
    }

    /** A directory of the read-only tree; {@code fixedEntries} is null where it lists the catalog on demand. */
    record Directory(String path, List<String> fixedEntries, int subdirectories, long inode, StoreView view,
            ImageTree tree) implements Node {

        @Override
        public Attr attr() {
            return view.directoryAttr(inode, subdirectories);
        }

        @Override
        public List<String> list() {
            return fixedEntries != null ? fixedEntries : tree.list(path);
        }

        @Override
        public void rmdir() throws FsException {
            if (ImageTree.underNames(path) && !path.equals(ImageTree.BY_NAME) && !path.equals(ImageTree.TAGS)) {
                throw new FsException(Errno.ENOTEMPTY, path + " has names under it; remove them first");
            }
            throw new FsException(Errno.EROFS, path + " cannot be removed");
        }
    }

    /** {@code by-digest/sha256/<hex>} with {@code -o data=fuse}: the image's bytes, served by the daemon. */
    record ImageFile(String path, ImageInfo image, StoreView view) implements Node {

        @Override
        public Attr attr() {
            return view.imageAttr(image);
        }

        @Override
        public OpenFile open(int flags) throws IOException, FsException {
            if ((flags & VimgFs.O_ACCMODE) != 0) {
                throw new FsException(Errno.EROFS, "images are read-only; write new images into incoming/");
            }
            return view.openImage(image);
        }

        @Override
        public void unlink() throws IOException {
            view.removeImage(image);
        }

        @Override
        public byte[] xattr(String name) throws FsException {
            return view.xattr(image, name);
        }

        @Override
        public List<String> xattrNames() {
            return view.xattrNames(image);
        }

        @Override
        public Optional<Digest> usedImage() {
            return Optional.of(image.digest());
        }
    }

    /**
     * {@code by-digest/sha256/<hex>} by default: an absolute link to the image's blob file, so
     * readers open the store's file itself and never depend on the daemon for bytes (issue 9).
     * Links have no {@code user.vimgfs.*} attributes: Linux allows no user.* attributes on a
     * symlink; getfattr follows the link to the blob, which carries them.
     */
    record BlobLink(String path, ImageInfo image, String target, StoreView view) implements Node {

        @Override
        public Attr attr() {
            return view.linkAttr(target, Inodes.ofDigest(image.digest()), image);
        }

        @Override
        public String readlink() {
            return target;
        }

        @Override
        public void unlink() throws IOException {
            view.removeImage(image);
        }

        @Override
        public Optional<Digest> usedImage() {
            return Optional.of(image.digest());
        }
    }

    /**
     * {@code by-name/…} and {@code tags/…}: a relative link to {@code by-digest/}. {@code name}
     * is empty for the bare-digest links that resolve in every name directory (SPEC §6).
     */
    record NameLink(String path, String target, ImageInfo image, Optional<ImageName> name, long inode,
            StoreView view) implements Node {

        @Override
        public Attr attr() {
            return view.linkAttr(target, inode, image);
        }

        @Override
        public String readlink() {
            return target;
        }

        @Override
        public void unlink() throws IOException, FsException {
            if (name.isEmpty()) {
                throw new FsException(Errno.EPERM, path + " is the digest, not a name: remove by-digest/sha256/"
                        + image.digest().hex() + " to remove the image");
            }
            view.untag(name.get(), image);
        }

        @Override
        public Optional<Digest> usedImage() {
            return Optional.of(image.digest());
        }
    }

    /**
     * An entry libfuse renamed to {@code .fuse_hidden…} because it was open when removed: it
     * answers stat as the entry did until libfuse unlinks it at the last close (SPEC §5).
     */
    record Hidden(String path, Attr attributes, VimgFs owner) implements Node {

        @Override
        public Attr attr() {
            return attributes;
        }

        @Override
        public void unlink() {
            owner.forgetHidden(path);
        }

        /** An upload hidden while open was abandoned: incoming/ no longer has it. */
        @Override
        public void renameTo(String to) throws IOException, FsException {
            if (ImageTree.isIncoming(path) && ImageTree.isIncoming(to)) {
                throw new FsException(Errno.ENOENT, "no " + path.substring(1));
            }
            Node.super.renameTo(to);
        }
    }

    /** {@code incoming/} or a directory made in it for nested names; {@code relative} is the path below it. */
    record IncomingDirectory(String path, String relative, IncomingArea area, StoreView view) implements Node {

        @Override
        public Attr attr() {
            return view.directoryAttr(Inodes.ofPath(path), 0);
        }

        @Override
        public List<String> list() throws FsException {
            return area.list(relative);
        }

        /** Only under a valid name (else EINVAL): the upload starts at once. */
        @Override
        public OpenFile create(String leaf, int mode) throws IOException, FsException {
            IncomingFile file = area.create(below(leaf)); // open once already: no moment when it could be dropped
            file.mode(mode); // an upload created 0600 stays unreadable to others until placed
            return new OpenFile.UploadHandle(file, true, area, view.store());
        }

        @Override
        public void mkdir(String leaf) throws IOException, FsException {
            area.mkdir(below(leaf));
        }

        @Override
        public void rmdir() throws FsException {
            area.rmdir(relative);
        }

        /** The area answers, so that a directory's EXDEV and a missing name's ENOENT come from one place. */
        @Override
        public void renameTo(String to) throws IOException, FsException {
            renameInIncoming(area, relative, to);
        }

        @Override
        public void setAttributes() {
            // accepted and ignored, so that cp -p, rsync -a and tar x work
        }

        private String below(String leaf) {
            return relative.isEmpty() ? leaf : relative + "/" + leaf;
        }
    }

    /** A file being uploaded in {@code incoming/}. */
    record IncomingUpload(String path, String relative, IncomingFile file, IncomingArea area, ImageStore store)
            implements Node {

        @Override
        public Attr attr() {
            return StoreView.uploadAttr(file);
        }

        @Override
        public OpenFile open(int flags) throws IOException, FsException {
            boolean writing = (flags & VimgFs.O_ACCMODE) != 0;
            // O_TRUNC (atomic_o_trunc) starts a fresh upload of the name rather than truncating another writer's
            IncomingFile opened = area.open(relative, writing, (flags & VimgFs.O_TRUNC) != 0);
            return new OpenFile.UploadHandle(opened, writing, area, store);
        }

        /** {@code rm incoming/x} abandons the upload (SPEC §4). */
        @Override
        public void unlink() throws FsException {
            area.unlink(relative);
        }

        /** rsync's rename of its temporary file, which places the upload (SPEC §4). */
        @Override
        public void renameTo(String to) throws IOException, FsException {
            renameInIncoming(area, relative, to);
        }

        @Override
        public void truncate(long size) throws IOException, FsException {
            file.truncate(size);
        }

        @Override
        public void setAttributes() {
            // accepted and ignored, as for the directories of incoming/
        }
    }

    private static void renameInIncoming(IncomingArea area, String relative, String to) throws IOException, FsException {
        if (!ImageTree.isIncoming(to)) {
            throw new FsException(Errno.EXDEV, "only files in incoming/ can be renamed");
        }
        area.rename(relative, IncomingTree.relative(to));
    }
}
