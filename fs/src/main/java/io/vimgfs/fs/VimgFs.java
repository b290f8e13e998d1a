package io.vimgfs.fs;

import io.vimgfs.store.ImageStore;
import io.vimgfs.store.StoreStats;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The filesystem of SPEC §2, §4 and §5, in plain Java: paths in, attributes, bytes and errno
 * (as {@link FsException}) out. {@link FuseAdapter} connects it to libfuse; tests call it
 * directly. Each operation resolves a path to a {@link Node} (or a handle to an
 * {@link OpenFile}) and delegates to it; the kinds of entry own what may be done to them.
 * This class owns only what outlives one lookup: the open files and the entries libfuse hid.
 */
public final class VimgFs implements Closeable {
    static final int O_ACCMODE = 3;
    static final int O_TRUNC = 01000;
    private static final String HIDDEN_PREFIX = ".fuse_hidden";

    private final StoreView view;
    private final IncomingArea incoming;
    private final HandleTable handles = new HandleTable();
    /** Entries libfuse renamed to {@code .fuse_hidden…} because they were open when removed. */
    private final Map<String, Attr> hidden = new ConcurrentHashMap<>();
    private final ImageTree tree;
    private final IncomingTree incomingTree;

    /** What an open returns: the handle, and whether the kernel may keep cached pages. */
    record Opened(long handle, boolean keepCache) {
    }

    public VimgFs(ImageStore store, Clock clock, DataMode mode) {
        this.view = new StoreView(store, mode, clock.instant());
        this.incoming = new IncomingArea(store, clock);
        this.tree = new ImageTree(view);
        this.incomingTree = new IncomingTree(incoming, view);
    }

    DataMode mode() {
        return view.mode();
    }

    /** The directory the store lives in, whose filesystem {@code statfs} reports. */
    Path storeRoot() {
        return view.store().root();
    }

    private Node node(String path) throws FsException {
        return lookup(path).orElseThrow(() -> new FsException(Errno.ENOENT, "no such entry " + path));
    }

    private Optional<Node> lookup(String path) {
        Attr hiddenEntry = hidden.get(path);
        if (hiddenEntry != null) {
            return Optional.of(new Node.Hidden(path, hiddenEntry, this));
        }
        Optional<Node> found = ImageTree.isIncoming(path) ? incomingTree.lookup(path) : tree.lookup(path);
        found.flatMap(Node::usedImage).ifPresent(view.store()::recordUse);
        return found;
    }

    /** The directory a new entry at {@code path} goes into: its kind says what may be made there. */
    private Node parent(String path) throws FsException {
        return node(parentOf(path));
    }

    void forgetHidden(String path) {
        hidden.remove(path);
    }

    Attr getattr(String path) throws FsException {
        Optional<Node> node = lookup(path);
        if (node.isPresent()) {
            return node.get().attr();
        }
        // fstat(2) of an open file whose last name is gone arrives as a getattr of its path
        return handles.attrAt(path).orElseThrow(() -> new FsException(Errno.ENOENT, "no such entry " + path));
    }

    /** fstat(2) answers from the open file, so it works after the last name is gone (SPEC §5). */
    Attr fgetattr(String path, long handle) throws FsException {
        return handles.get(handle).attr();
    }

    String readlink(String path) throws FsException {
        return node(path).readlink();
    }

    List<String> readdir(String path) throws FsException {
        return node(path).list();
    }

    Opened open(String path, int flags) throws IOException, FsException {
        return opened(node(path).open(flags), path);
    }

    /** Creates a file: only in {@code incoming/}, and only under a valid name (else EINVAL). */
    Opened create(String path, int mode) throws IOException, FsException {
        return opened(parent(path).create(leafOf(path), mode), path);
    }

    Opened create(String path) throws IOException, FsException {
        return create(path, 0644);
    }

    private Opened opened(OpenFile file, String path) {
        return new Opened(handles.add(file, path), file.keepCache());
    }

    /** Reads into {@code into} until it is full or the file ends; returns the bytes read. */
    int read(long handle, ByteBuffer into, long offset) throws IOException, FsException {
        OpenFile open = handles.get(handle);
        int total = 0;
        while (into.hasRemaining()) {
            int n = open.readSome(into, offset + total);
            if (n < 0) {
                break;
            }
            total += n;
        }
        return total;
    }

    int write(long handle, ByteBuffer data, long offset) throws IOException, FsException {
        return handles.get(handle).write(data, offset);
    }

    void truncate(String path, long size) throws IOException, FsException {
        node(path).truncate(size);
    }

    void ftruncate(long handle, long size) throws IOException, FsException {
        handles.get(handle).truncate(size);
    }

    void fallocate(long handle, int mode) throws FsException {
        handles.get(handle).fallocate(mode);
    }

    /** close(2) of a writer places the upload (SPEC §4); the errno reaches the writer's close. */
    void flush(long handle) throws FsException {
        handles.get(handle).flush();
    }

    void release(long handle) throws IOException, FsException {
        handles.remove(handle).release();
    }

    /** rm: abandons an upload, untags a name, or removes an image with all its names (SPEC §5). */
    void unlink(String path) throws IOException, FsException {
        node(path).unlink();
    }

    void mkdir(String path) throws IOException, FsException {
        parent(path).mkdir(leafOf(path));
    }

    void rmdir(String path) throws FsException {
        Optional<Node> node = lookup(path);
        if (node.isEmpty() && ImageTree.underNames(path) && !path.equals(ImageTree.BY_NAME) && !path.equals(ImageTree.TAGS)) {
            return; // it went with its last name, as rm -r expects
        }
        node.orElseThrow(() -> new FsException(Errno.ENOENT, "no such entry " + path)).rmdir();
    }

    /**
     * libfuse renames an open file to {@code .fuse_hidden…} instead of unlinking it (SPEC §5):
     * that protocol is answered here; any other rename is the entry's kind's to answer.
     */
    void rename(String from, String to) throws IOException, FsException {
        Node entry = node(from);
        if (leafOf(to).startsWith(HIDDEN_PREFIX) && parentOf(from).equals(parentOf(to))) {
            Attr attributes = entry.attr();
            entry.unlink();
            hidden.put(to, attributes);
            return;
        }
        entry.renameTo(to);
    }

    void symlink(String path) throws FsException {
        throw new FsException(Errno.EROFS, "names are made by writing into incoming/ or with 'vimgfs tag'");
    }

    void link(String path) throws FsException {
        throw new FsException(Errno.EROFS, "hard links are not supported");
    }

    /** Fifos, sockets and devices: refused in incoming/ as not an image, elsewhere as read-only. */
    void mknod(String path) throws FsException {
        throw new FsException(ImageTree.isIncoming(path) ? Errno.EPERM : Errno.EROFS, "only regular files can be written");
    }

    /** chmod, chown, utimens: accepted (and ignored) in incoming/, EROFS elsewhere, never ENOSYS. */
    void setAttributes(String path) throws FsException {
        node(path).setAttributes();
    }

    /**
     * With links, no entry of the mount has attributes (the blobs carry them, outside the mount):
     * ENOSYS makes the kernel stop asking for the whole mount, which saves {@code ls -l} the
     * round trip per entry it spends on security.selinux. With data=fuse, names outside
     * {@code user.vimgfs.} (security.selinux, ACLs) never reach the catalog.
     */
    byte[] getxattr(String path, String name) throws FsException {
        requireAttributes();
        if (!name.startsWith(StoreView.XATTR_PREFIX)) {
            throw new FsException(Errno.ENODATA, "no attribute " + name);
        }
        return node(path).xattr(name);
    }

    List<String> listxattr(String path) throws FsException {
        requireAttributes();
        return node(path).xattrNames();
    }

    /** setxattr and removexattr: no entry's attributes can be changed, but a missing entry is ENOENT. */
    void setxattr(String path) throws FsException {
        getattr(path);
        throw new FsException(Errno.EROFS, "attributes are read-only");
    }

    private void requireAttributes() throws FsException {
        if (view.mode() == DataMode.LINK) {
            throw new FsException(Errno.ENOSYS, "entries of the mount have no extended attributes; the blobs do");
        }
    }

    StoreStats statfs() throws IOException {
        return view.store().stats();
    }

    /** Files open through the daemon right now. */
    int openFiles() {
        return handles.size();
    }

    /** Closes every open file; uploads not yet placed stay staged for the next mount to clean. */
    @Override
    public void close() {
        for (OpenFile open : handles.drain()) {
            open.closeAtUnmount();
        }
        incoming.closeAll();
    }

    private static String parentOf(String path) {
        int slash = path.lastIndexOf('/');
        return slash <= 0 ? "/" : path.substring(0, slash);
    }

    private static String leafOf(String path) {
        return path.substring(path.lastIndexOf('/') + 1);
    }
}
