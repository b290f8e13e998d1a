package io.vimgfs.fs;

import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.io.IOException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The writable part of the tree, {@code incoming/} (SPEC §4): files being uploaded and the
 * directories made for nested names. Paths here are relative to {@code incoming/}; the empty
 * path is {@code incoming/} itself. It lives in memory: after a remount it starts empty.
 */
final class IncomingArea {
    private final ImageStore store;
    private final Clock clock;
    private final ConcurrentHashMap<String, IncomingFile> files = new ConcurrentHashMap<>();
    private final Set<String> directories = ConcurrentHashMap.newKeySet();

    IncomingArea(ImageStore store, Clock clock) {
        this.store = store;
        this.clock = clock;
    }

    Optional<IncomingFile> file(String path) {
        return Optional.ofNullable(files.get(path));
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

    /** Starts an upload at {@code path}; a name that is not a valid reference is {@code EINVAL}. */
    IncomingFile create(String path) throws IOException, FsException {
        requireParent(path);
        if (directories.contains(path)) {
            throw new FsException(Errno.EISDIR, "incoming/" + path + " is a directory");
        }
        if (!IncomingFile.isStagingName(path)) {
            Reference.parse(path);
        }
        IncomingFile file = new IncomingFile(path, store.beginUpload(), clock, Inodes.ofPath("/incoming/" + path + "#" + System.nanoTime()));
        IncomingFile previous = files.put(path, file);
        if (previous != null && !previous.isOpen()) {
            previous.abandon(); // a closed staging file replaced, as a new file replaces an old one
        }
        return file;
    }

    /** Forgets a placed or refused file, unless a newer upload has taken its name. */
    void forget(IncomingFile file) {
        files.remove(file.name(), file);
    }

    void mkdir(String path) throws FsException, IOException {
        requireParent(path);
        if (directories.contains(path) || files.containsKey(path)) {
            throw new FsException(Errno.EEXIST, "incoming/" + path + " exists");
        }
        Reference.parse(path + "/x"); // each component must be valid in a repository path
        directories.add(path);
    }

    void rmdir(String path) throws FsException {
        if (path.isEmpty()) {
            throw new FsException(Errno.EROFS, "incoming/ itself cannot be removed");
        }
        if (!list(path).isEmpty()) {
            throw new FsException(Errno.ENOTEMPTY, "incoming/" + path + " is not empty");
        }
        directories.remove(path);
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
        if (replaced != null && replaced != file && !replaced.isOpen()) {
            replaced.abandon();
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
        files.clear();
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
