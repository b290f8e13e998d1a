package io.vimgfs.store;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Serialises writers to one store: first among this process's threads (a {@link ReentrantLock}),
 * then across processes (an exclusive {@link FileLock} on {@code .vimgfs/lock}). Readers of a
 * snapshot take neither; a reader that needs the store still between two files (a reload, fsck)
 * takes it {@link #consistent}ly. Writers take it through {@link Snapshots#write}, which catches
 * up with other processes first, so no operation can forget to.
 *
 * <p>Lock order, outermost first. A thread holding one may take only those below it:
 * <ol>
 * <li>(fs) an {@code IncomingFile}'s monitor, held across its placement;</li>
 * <li>this lock's in-process {@link ReentrantLock} (reentrant: gc, prune and releases commit from
 *     inside their own section, and the nested section runs the commit directly);</li>
 * <li>this lock's file lock on {@code .vimgfs/lock};</li>
 * <li>leaves, never held while taking 1–3 or each other: an {@link Upload}'s monitor, the
 *     {@link MetadataBlobs} queue's monitor (the index writer holds it while it fsyncs, so a
 *     commit under the lock may wait for those fsyncs), a {@link Retention.View}'s monitor, the
 *     {@link IndexWriter}'s state, and {@link #OPEN}.</li>
 * </ol>
 * Fields and methods marked {@code @GuardedBy("store lock")} are used only while holding 2 and 3.
 *
 * <p>There is one instance per lock file per JVM, shared by every {@link ImageStore} open on the
 * store: POSIX record locks belong to the process, and closing any descriptor of the file would
 * silently drop a lock another instance holds.
 *
 * <p>A store on a read-only filesystem has no lock file to open, and needs none: nobody can
 * change it. Its lock lets readers through and refuses every writer with {@link StoreReadOnlyException}.
 * That includes a filesystem whose mount flags still say {@code rw} but which answers writes with
 * EROFS: ext4 does so after an error aborts its journal ({@code abort,emergency_ro} in
 * /proc/mounts, and no ST_RDONLY from statvfs), so the refusal itself is what tells.
 */
final class StoreLock implements Closeable {
    /** Work done while holding the lock. */
    interface Section<T> {
        T run() throws IOException;
    }

    private static final Map<Path, StoreLock> OPEN = new HashMap<>();

    private final Path path;
    private final Path store;
    private final ReentrantLock local = new ReentrantLock();
    /** The open lock file; null for a store on a read-only filesystem. */
    private final FileChannel file;
    /** For a store whose filesystem is mounted rw but refused a write: the file it refused; else null. */
    private final Path refused;
    private int users;

    private StoreLock(Path path, Path store, FileChannel file, Path refused) {
        this.path = path;
        this.store = store;
        this.file = file;
        this.refused = refused;
    }

    static StoreLock open(Path lockFile, Path store) throws IOException {
        Path key = lockFile.toAbsolutePath().normalize();
        synchronized (OPEN) {
            StoreLock lock = OPEN.get(key);
            if (lock == null) {
                FileChannel channel = FileChannel.open(key, StandardOpenOption.CREATE, StandardOpenOption.READ,
                        StandardOpenOption.WRITE);
                lock = new StoreLock(key, store, channel, null);
                OPEN.put(key, lock);
            }
            lock.users++;
            return lock;
        }
    }

    /** The lock of a store on a filesystem mounted read-only. */
    static StoreLock readOnly(Path store) {
        return new StoreLock(null, store, null, null);
    }

    /** The lock of a store whose filesystem, mounted rw, refused a write of opening the store ({@code refusal}). */
    static StoreLock writesRefused(Path store, FileSystemException refusal) {
        return new StoreLock(null, store, null, refusal.getFile() == null ? store : Path.of(refusal.getFile()));
    }

    /** Runs a change of the store, for {@code purpose} ("add an image"), alone among writers. */
    <T> T exclusive(String purpose, Section<T> section) throws IOException {
        requireWritable(purpose);
        if (local.isHeldByCurrentThread()) {
            return section.run(); // nested: the file lock is already ours
        }
        local.lock();
        try (FileLock ignored = file.lock()) {
            return section.run();
        } finally {
            local.unlock();
        }
    }

    /** Runs a read that must see no writer in between; on a read-only filesystem there is none. */
    <T> T consistent(Section<T> section) throws IOException {
        return file == null ? section.run() : exclusive("read it", section);
    }

    /** Fails, saying so, if the store cannot be written. */
    void requireWritable(String purpose) throws StoreReadOnlyException {
        if (file == null) {
            throw refused == null ? StoreReadOnlyException.mountedReadOnly(store, purpose)
                    : StoreReadOnlyException.writesRefused(store, purpose, refused);
        }
    }

    @Override
    public void close() throws IOException {
        if (file == null) {
            return;
        }
        synchronized (OPEN) {
            if (--users == 0) {
                OPEN.remove(path);
                file.close();
            }
        }
    }
}
