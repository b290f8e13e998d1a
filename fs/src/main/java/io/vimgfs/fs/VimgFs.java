package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.StoreStats;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * The filesystem of SPEC §2, §4 and §5, in plain Java: paths in, attributes, bytes and errno
 * (as {@link FsException}) out. {@link FuseAdapter} connects it to libfuse; tests call it
 * directly. It reaches image bytes only through the {@link ImageStore}.
 */
public final class VimgFs implements Closeable {
    private static final System.Logger LOG = System.getLogger(VimgFs.class.getName());
    private static final String XATTR_PREFIX = "user.vimgfs.";
    private static final List<String> XATTRS = List.of("user.vimgfs.digest", "user.vimgfs.format",
            "user.vimgfs.virtual_size", "user.vimgfs.names", "user.vimgfs.backing");
    private static final String HIDDEN_PREFIX = ".fuse_hidden";
    private static final int O_ACCMODE = 3;
    private static final int O_TRUNC = 01000;

    private final ImageStore store;
    private final Instant mounted;
    private final Allocation allocation;
    private final IncomingArea incoming;
    private final HandleTable handles = new HandleTable();
    /** Entries libfuse renamed to {@code .fuse_hidden…} because they were open when removed. */
    private final Map<String, Attr> hidden = new ConcurrentHashMap<>();
    private final ImageTree tree;

    /** What an open returns: the handle, and whether the kernel may keep cached pages. */
    record Opened(long handle, boolean keepCache) {
    }

    public VimgFs(ImageStore store, Clock clock) {
        this.store = store;
        this.mounted = clock.instant();
        this.allocation = new Allocation(store::imagePath);
        this.incoming = new IncomingArea(store, clock);
        this.tree = new ImageTree(store);
    }

    // ---- reading the tree ----------------------------------------------------------------

    Attr getattr(String path) throws FsException {
        if (ImageTree.isIncoming(path)) {
            return incomingAttr(relative(path));
        }
        Attr hiddenEntry = hidden.get(path);
        if (hiddenEntry != null) {
            return hiddenEntry;
        }
        return attr(node(path));
    }

    Attr fgetattr(String path, long handle) throws FsException {
        OpenFile open = handles.get(handle);
        if (open instanceof OpenFile.UploadHandle upload) {
            return fileAttr(upload.file());
        }
        return getattr(path);
    }

    private Attr attr(Node node) {
        if (node instanceof Node.ImageFile file) {
            ImageInfo image = file.image();
            return new Attr(Attr.Kind.FILE, 0444, image.size(), allocation.blocks(image.digest(), image.size()),
                    Inodes.ofDigest(image.digest()), image.created(), 1);
        }
        if (node instanceof Node.Link link) {
            return new Attr(Attr.Kind.SYMLINK, 0777, link.target().length(), 0, link.inode(), link.image().created(), 1);
        }
        Node.Directory dir = (Node.Directory) node;
        return directoryAttr(dir.inode(), dir.subdirectories());
    }

    private Attr directoryAttr(long inode, int subdirectories) {
        return new Attr(Attr.Kind.DIRECTORY, 0755, 4096, 8, inode, mounted, 2 + subdirectories);
    }

    private Attr incomingAttr(String path) throws FsException {
        if (incoming.isDirectory(path)) {
            return directoryAttr(Inodes.ofPath(ImageTree.INCOMING + (path.isEmpty() ? "" : "/" + path)), 0);
        }
        Optional<IncomingFile> file = incoming.file(path);
        if (file.isPresent()) {
            return fileAttr(file.get());
        }
        Attr hiddenEntry = hidden.get(ImageTree.INCOMING + "/" + path);
        if (hiddenEntry != null) {
            return hiddenEntry;
        }
        throw new FsException(Errno.ENOENT, "no incoming/" + path);
    }

    private static Attr fileAttr(IncomingFile file) {
        long size = file.size();
        return new Attr(Attr.Kind.FILE, 0644, size, (size + 511) / 512, file.inode(), file.modified(), 1);
    }

    String readlink(String path) throws FsException {
        if (node(path) instanceof Node.Link link) {
            return link.target();
        }
        throw new FsException(Errno.EINVAL, path + " is not a symbolic link");
    }

    List<String> readdir(String path) throws FsException {
        if (ImageTree.isIncoming(path)) {
            return incoming.list(relative(path));
        }
        if (node(path) instanceof Node.Directory dir) {
            return dir.children() != null ? dir.children() : tree.list(path);
        }
        throw new FsException(Errno.ENOTDIR, path + " is not a directory");
    }

    private Node node(String path) throws FsException {
        return tree.lookup(path).orElseThrow(() -> new FsException(Errno.ENOENT, "no such entry " + path));
    }

    // ---- open files ----------------------------------------------------------------------

    Opened open(String path, int flags) throws IOException, FsException {
        boolean writing = (flags & O_ACCMODE) != 0;
        if (ImageTree.isIncoming(path)) {
            IncomingFile file = incoming.file(relative(path))
                    .orElseThrow(() -> new FsException(Errno.ENOENT, "no such entry " + path));
            if (writing && (flags & O_TRUNC) != 0) {
                file.truncate(0);
            }
            file.opened();
            return new Opened(handles.add(new OpenFile.UploadHandle(file, writing)), false);
        }
        Node node = node(path);
        if (!(node instanceof Node.ImageFile file)) {
            throw new FsException(Errno.EISDIR, path + " is not a file");
        }
        if (writing) {
            throw new FsException(Errno.EROFS, "images are read-only; write new images into incoming/");
        }
        Digest digest = file.image().digest();
        return new Opened(handles.add(new OpenFile.ImageHandle(digest, store.openImage(digest))), true);
    }

    /** Creates a file: only in {@code incoming/}, and only under a valid name (else EINVAL). */
    Opened create(String path) throws IOException, FsException {
        if (!ImageTree.isIncoming(path) || path.equals(ImageTree.INCOMING)) {
            throw new FsException(Errno.EROFS, "new files can only be written into incoming/");
        }
        IncomingFile file = incoming.create(relative(path));
        file.opened();
        return new Opened(handles.add(new OpenFile.UploadHandle(file, true)), false);
    }

    /** Reads into {@code into} until it is full or the file ends; returns the bytes read. */
    int read(long handle, ByteBuffer into, long offset) throws IOException, FsException {
        OpenFile open = handles.get(handle);
        int total = 0;
        while (into.hasRemaining()) {
            int n = open instanceof OpenFile.ImageHandle image
                    ? image.channel().read(into, offset + total)
                    : ((OpenFile.UploadHandle) open).file().read(into, offset + total);
            if (n < 0) {
                break;
            }
            total += n;
        }
        return total;
    }

    int write(long handle, ByteBuffer data, long offset) throws IOException, FsException {
        if (handles.get(handle) instanceof OpenFile.UploadHandle upload && upload.writer()) {
            return upload.file().write(data, offset);
        }
        throw new FsException(Errno.EBADF, "not open for writing");
    }

    void truncate(String path, long size) throws IOException, FsException {
        if (!ImageTree.isIncoming(path)) {
            node(path);
            throw new FsException(Errno.EROFS, "images are read-only");
        }
        IncomingFile file = incoming.file(relative(path))
                .orElseThrow(() -> new FsException(Errno.ENOENT, "no such entry " + path));
        file.truncate(size);
    }

    void ftruncate(long handle, long size) throws IOException, FsException {
        if (handles.get(handle) instanceof OpenFile.UploadHandle upload && upload.writer()) {
            upload.file().truncate(size);
            return;
        }
        throw new FsException(Errno.EROFS, "images are read-only");
    }

    /** close(2) of a writer places the upload (SPEC §4); the errno reaches the writer's close. */
    void flush(long handle) throws FsException {
        if (handles.get(handle) instanceof OpenFile.UploadHandle upload && upload.writer()) {
            IncomingFile file = upload.file();
            Errno failure = file.place(store);
            if (file.state() == IncomingFile.State.PLACED || file.state() == IncomingFile.State.FAILED) {
                incoming.forget(file);
            }
            if (failure != null) {
                throw new FsException(failure, "placing incoming/" + file.name() + " failed");
            }
        }
    }

    void release(long handle) throws IOException, FsException {
        OpenFile open = handles.remove(handle);
        if (open instanceof OpenFile.ImageHandle image) {
            image.channel().close();
            if (store.image(image.digest()).isEmpty()) {
                store.collectIfUnused(image.digest()); // kept while we had it open; gone now unless others do
            }
        } else if (open instanceof OpenFile.UploadHandle upload && upload.file().closed()
                && upload.file().abandonIfEmpty()) {
            incoming.forget(upload.file());
        }
    }

    // ---- changing the tree ---------------------------------------------------------------

    /** rm: abandons an upload, untags a name, or removes an image with all its names (SPEC §5). */
    void unlink(String path) throws IOException, FsException {
        if (hidden.remove(path) != null) {
            return;
        }
        if (ImageTree.isIncoming(path)) {
            incoming.unlink(relative(path));
            return;
        }
        Node node = node(path);
        if (node instanceof Node.Link link) {
            untag(link);
        } else if (node instanceof Node.ImageFile file) {
            removeImage(file.image());
        } else {
            throw new FsException(Errno.EISDIR, path + " is a directory");
        }
    }

    private void untag(Node.Link link) throws IOException, FsException {
        if (link.name().isEmpty()) {
            throw new FsException(Errno.EPERM, link.path() + " is the digest, not a name: remove by-digest/sha256/"
                    + link.image().digest().hex() + " to remove the image");
        }
        ImageName name = link.name().get();
        store.untag(name);
        boolean imageGone = store.image(link.image().digest()).isEmpty();
        LOG.log(System.Logger.Level.INFO, () -> "untagged " + name + " " + link.image().digest()
                + (imageGone ? "; image removed with its last name (" + link.image().size() + " bytes)" : ""));
    }

    private void removeImage(ImageInfo image) throws IOException {
        boolean gone = store.removeImage(image.digest());
        LOG.log(System.Logger.Level.INFO, () -> "removed " + image.digest() + " (" + image.size() + " bytes, names "
                + image.names().stream().map(ImageName::toString).collect(Collectors.joining(",")) + ")"
                + (gone ? "" : "; kept without names as the backing of another image"));
    }

    void mkdir(String path) throws IOException, FsException {
        if (!ImageTree.isIncoming(path) || path.equals(ImageTree.INCOMING)) {
            throw new FsException(Errno.EROFS, "directories can only be made in incoming/");
        }
        incoming.mkdir(relative(path));
    }

    void rmdir(String path) throws FsException {
        if (ImageTree.isIncoming(path)) {
            incoming.rmdir(relative(path));
            return;
        }
        Optional<Node> node = tree.lookup(path);
        if (ImageTree.underNames(path) && !path.equals(ImageTree.BY_NAME) && !path.equals(ImageTree.TAGS)) {
            if (node.isEmpty()) {
                return; // it went with its last name, as rm -r expects
            }
            throw new FsException(Errno.ENOTEMPTY, path + " has names under it; remove them first");
        }
        throw new FsException(node.isEmpty() ? Errno.ENOENT : Errno.EROFS, path + " cannot be removed");
    }

    /**
     * Renames within {@code incoming/} (rsync's temporary files), and libfuse's rename of an
     * open file to {@code .fuse_hidden…}, which stands for unlink (SPEC §5).
     */
    void rename(String from, String to) throws IOException, FsException {
        String leaf = to.substring(to.lastIndexOf('/') + 1);
        if (leaf.startsWith(HIDDEN_PREFIX) && parentOf(from).equals(parentOf(to))) {
            Attr attributes = getattr(from);
            unlink(from);
            hidden.put(to, attributes);
            return;
        }
        boolean fromIncoming = ImageTree.isIncoming(from);
        boolean toIncoming = ImageTree.isIncoming(to);
        if (fromIncoming && toIncoming) {
            incoming.rename(relative(from), relative(to));
            return;
        }
        getattr(from);
        throw new FsException(fromIncoming || toIncoming ? Errno.EXDEV : Errno.EROFS,
                "only files in incoming/ can be renamed");
    }

    /** chmod, chown, utimens: accepted (and ignored) in incoming/, EROFS elsewhere, never ENOSYS. */
    void setAttributes(String path) throws FsException {
        getattr(path);
        if (!ImageTree.isIncoming(path)) {
            throw new FsException(Errno.EROFS, path + " is read-only");
        }
    }

    // ---- xattrs and statistics -----------------------------------------------------------

    byte[] getxattr(String path, String name) throws FsException {
        if (!name.startsWith(XATTR_PREFIX) || ImageTree.isIncoming(path)) {
            throw new FsException(Errno.ENODATA, "no attribute " + name);
        }
        if (!(node(path) instanceof Node.ImageFile file)) {
            throw new FsException(Errno.ENODATA, "no attribute " + name);
        }
        ImageInfo image = file.image();
        String value = switch (name.substring(XATTR_PREFIX.length())) {
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

    List<String> listxattr(String path) throws FsException {
        if (ImageTree.isIncoming(path) || !(node(path) instanceof Node.ImageFile file)) {
            return List.of();
        }
        List<String> names = new ArrayList<>(XATTRS);
        if (file.image().backing().isEmpty()) {
            names.remove("user.vimgfs.backing");
        }
        return names;
    }

    private List<ImageName> currentNames(ImageInfo image) {
        return store.image(image.digest()).map(ImageInfo::names).orElse(image.names());
    }

    StoreStats statfs() throws IOException {
        return store.stats();
    }

    // ---- lifecycle -----------------------------------------------------------------------

    /** Closes every open file; uploads not yet placed stay staged for the next mount to clean. */
    @Override
    public void close() {
        for (OpenFile open : handles.drain()) {
            if (open instanceof OpenFile.ImageHandle image) {
                try {
                    image.channel().close();
                } catch (IOException e) {
                    LOG.log(System.Logger.Level.WARNING, "closing " + image.digest() + ": " + e.getMessage());
                }
            }
        }
        incoming.closeAll();
    }

    private static String relative(String path) {
        return path.equals(ImageTree.INCOMING) ? "" : path.substring(ImageTree.INCOMING.length() + 1);
    }

    private static String parentOf(String path) {
        int slash = path.lastIndexOf('/');
        return slash <= 0 ? "/" : path.substring(0, slash);
    }
}
