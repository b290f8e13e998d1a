package io.vimgfs.fs;

import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The writable part of the tree, {@code incoming/} (SPEC §4): files being uploaded and the
 * directories made for nested names. Paths here are relative to {@code incoming/}; the empty
 * path is {@code incoming/} itself. It lives in memory: after a remount it starts empty.
 *
 * <p>It also owns the area's quota. Every staged upload holds a descriptor and a lock on its
 * staging file and every directory some memory, so a client making thousands of them once ran the
 * daemon out of memory and took every open image with it. Past {@link Limits} a create (or a
 * write that starts a new version) and a mkdir fail with {@code EDQUOT}, logged once per time the
 * limit is reached. EDQUOT, not EMFILE or ENOSPC: EMFILE would send the user to their own
 * descriptor limit and ENOSPC to a disk that {@code df} shows is not full; "quota exceeded" names
 * what it is, a limit of this area, and tools report it as a plain failure.
 */
final class IncomingArea {
    private static final System.Logger LOG = System.getLogger(IncomingArea.class.getName());

    /** How many uploads may be staged at once (open or closed dot-files), and directories made. */
    record Limits(int uploads, int directories) {
        /** Far beyond what people write at once; low enough that a descriptor and a few KiB each stay cheap. */
        static final Limits DEFAULT = new Limits(1024, 10_000);
    }

    private final ImageStore store;
    private final Clock clock;
    private final Limits limits;
    private final ConcurrentHashMap<String, IncomingFile> files = new ConcurrentHashMap<>();
    /**
     * Placed files some descriptor still has open, by name: gone from the listing, but libfuse
     * answers {@code fstat} through a path look-up, and the second {@code cat} of
     * {@code (cat p1; cat p2) > x} fstats its stdout after the first placed it.
     */
    private final ConcurrentHashMap<String, IncomingFile> placedStillOpen = new ConcurrentHashMap<>();
    private final Set<String> directories = ConcurrentHashMap.newKeySet();
    private final AtomicInteger stagedUploads = new AtomicInteger();
    private final AtomicBoolean uploadsFull = new AtomicBoolean();
    private final AtomicBoolean directoriesFull = new AtomicBoolean();

    IncomingArea(ImageStore store, Clock clock) {
        this(store, clock, Limits.DEFAULT);
    }

    IncomingArea(ImageStore store, Clock clock, Limits limits) {
        this.store = store;
        this.clock = clock;
        this.limits = limits;
    }

    ImageStore store() {
        return store;
    }

    /** The file being written at {@code path}, else a placed one still open there (for getattr). */
    Optional<IncomingFile> file(String path) {
        IncomingFile file = files.get(path);
        return Optional.ofNullable(file != null ? file : placedStillOpen.get(path));
    }

    boolean isDirectory(String path) {
        return path.isEmpty() || directories.contains(path);
    }

    /** The entries of a directory, sorted. */
    List<String> list(String directory) throws FsException {
        requireDirectory(directory);
        String prefix = directory.isEmpty() ? "" : directory + "/";
        TreeSet<String> entries = new TreeSet<>();
        for (String file : files.keySet()) {
            childOf(prefix, file).ifPresent(entries::add);
        }
        for (String dir : directories) {
            childOf(prefix, dir).ifPresent(entries::add);
        }
        return new ArrayList<>(entries);
    }

    private static Optional<String> childOf(String prefix, String path) {
        if (!path.startsWith(prefix)) {
            return Optional.empty();
        }
        String rest = path.substring(prefix.length());
        return rest.isEmpty() || rest.contains("/") ? Optional.empty() : Optional.of(rest);
    }

    /**
     * Starts an upload at {@code path}, open once for its creator; a name that is not a valid
     * reference is {@code EINVAL}. An upload already there keeps writing into its own staging
     * file: each create (and each open with O_TRUNC) is a file of its own, and whichever is placed
     * last holds the name.
     */
    IncomingFile create(String path) throws IOException, FsException {
        requireParent(path);
        if (directories.contains(path)) {
            throw new FsException(Errno.EISDIR, "incoming/" + path + " is a directory");
        }
        if (!IncomingFile.isStagingName(path)) {
            Reference.parse(path);
        }
        IncomingFile file = new IncomingFile(this, path, beginUpload(path), clock,
                Inodes.ofPath("/incoming/" + path + "#" + System.nanoTime()));
        IncomingFile previous = files.put(path, file);
        if (previous != null) {
            previous.replaced();
        }
        return file;
    }

    /** Opens an existing file; a writer's O_TRUNC starts a new upload of the same name instead. */
    IncomingFile open(String path, boolean writing, boolean truncate) throws IOException, FsException {
        if (writing && truncate) {
            return create(path);
        }
        for (int attempt = 0; attempt < 100; attempt++) {
            IncomingFile file = files.get(path);
            if (file == null) {
                break;
            }
            if (file.opened()) {
                return file;
            }
            files.remove(path, file); // dropped between the look-up and the open
        }
        throw new FsException(Errno.ENOENT, "no incoming/" + path);
    }

    /** A staging file for an upload at {@code path}, within the quota. */
    Upload beginUpload(String path) throws IOException, FsException {
        if (stagedUploads.incrementAndGet() > limits.uploads()) {
            stagedUploads.decrementAndGet();
            if (uploadsFull.compareAndSet(false, true)) {
                LOG.log(System.Logger.Level.WARNING, "incoming/ holds " + limits.uploads() + " staged uploads, its limit:"
                        + " refusing new ones with EDQUOT until some are placed or removed (first refused: incoming/" + path + ")");
            }
            throw new FsException(Errno.EDQUOT, "incoming/ already holds " + limits.uploads() + " staged uploads");
        }
        try {
            return store.beginUpload();
        } catch (IOException | RuntimeException e) {
            stagedUploads.decrementAndGet();
            throw e;
        }
    }

    /** An upload left the staging area: placed (consumed by the store), closed, or dropped. */
    void uploadGone(Upload upload, boolean drop) {
        stagedUploads.decrementAndGet();
        uploadsFull.set(false);
        if (drop) {
            try {
                upload.abandon();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "dropping a staged upload: " + e.getMessage());
            }
        }
    }

    /** A file written again after it was placed shows in the listing again, unless its name was taken. */
    void show(IncomingFile file) {
        placedStillOpen.remove(file.name(), file);
        files.putIfAbsent(file.name(), file);
    }

    /** A placed file leaves the listing (called with the file's lock held). */
    void hide(IncomingFile file) {
        files.remove(file.name(), file);
        if (file.isOpen()) {
            placedStillOpen.put(file.name(), file);
        }
    }

    /** The last descriptor of a file closed. */
    void lastClosed(IncomingFile file) {
        placedStillOpen.remove(file.name(), file);
    }

    /** Forgets a placed or refused file, unless a newer upload has taken its name or it is being written again. */
    void forget(IncomingFile file) {
        synchronized (file) {
            if (file.state() != IncomingFile.State.WRITING) {
                files.remove(file.name(), file);
            }
        }
    }

    void mkdir(String path) throws FsException, IOException {
        requireParent(path);
        if (directories.contains(path) || files.containsKey(path)) {
            throw new FsException(Errno.EEXIST, "incoming/" + path + " exists");
        }
        Reference.parse(path + "/x"); // each component must be valid in a repository path
        if (directories.size() >= limits.directories()) {
            if (directoriesFull.compareAndSet(false, true)) {
                LOG.log(System.Logger.Level.WARNING, "incoming/ holds " + limits.directories() + " directories, its limit:"
                        + " refusing mkdir with EDQUOT until some are removed (first refused: incoming/" + path + ")");
            }
            throw new FsException(Errno.EDQUOT, "incoming/ already holds " + limits.directories() + " directories");
        }
        directories.add(path);
    }

    void rmdir(String path) throws FsException {
        if (path.isEmpty()) {
            throw new FsException(Errno.EROFS, "incoming/ itself cannot be removed");
        }
        if (!list(path).isEmpty()) {
            throw new FsException(Errno.ENOTEMPTY, "incoming/" + path + " is not empty");
        }
        if (directories.remove(path)) {
            directoriesFull.set(false);
        }
    }

    /** {@code rm incoming/x}: abandons the upload (SPEC §4). */
    void unlink(String path) throws FsException {
        IncomingFile file = files.remove(path);
        if (file == null) {
            throw new FsException(directories.contains(path) ? Errno.EISDIR : Errno.ENOENT, "no incoming/" + path);
        }
        file.abandon();
    }

    /**
     * Renames within {@code incoming/}. A staging (dot) file renamed to a proper name that no
     * one still has open is placed at once, and the rename reports the outcome (rsync's way).
     */
    void rename(String from, String to) throws IOException, FsException {
        IncomingFile file = files.get(from);
        if (file == null) {
            throw new FsException(directories.contains(from) ? Errno.EXDEV : Errno.ENOENT,
                    directories.contains(from) ? "directories in incoming/ cannot be renamed" : "no incoming/" + from);
        }
        requireParent(to);
        if (directories.contains(to)) {
            throw new FsException(Errno.EISDIR, "incoming/" + to + " is a directory");
        }
        if (!IncomingFile.isStagingName(to)) {
            Reference.parse(to);
        }
        if (!files.remove(from, file)) {
            throw new FsException(Errno.ENOENT, "incoming/" + from + " changed during the rename");
        }
        file.rename(to);
        IncomingFile replaced = files.put(to, file);
        if (replaced != null && replaced != file) {
            replaced.replaced();
        }
        if (!file.staged() && !file.isOpen()) {
            Errno failure = file.place(store);
            forget(file);
            if (failure != null) {
                throw new FsException(failure, "placing incoming/" + to + " failed");
            }
        }
    }

    /** Closes every upload at unmount; their staging files are cleaned at the next mount. */
    void closeAll() {
        files.values().forEach(IncomingFile::closeAtUnmount);
        placedStillOpen.values().forEach(IncomingFile::closeAtUnmount);
        files.clear();
        placedStillOpen.clear();
    }

    private void requireParent(String path) throws FsException {
        int slash = path.lastIndexOf('/');
        String parent = slash < 0 ? "" : path.substring(0, slash);
        requireDirectory(parent);
    }

    private void requireDirectory(String path) throws FsException {
        if (!isDirectory(path)) {
            throw new FsException(Errno.ENOENT, "no directory incoming/" + path);
        }
    }
}
