package io.vimgfs.store;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Serialises writers to one store: first among this process's threads (a {@link ReentrantLock}),
 * then across processes (an exclusive {@link FileLock} on {@code .vimgfs/lock}). Lock order: the
 * in-process lock, then the file lock. Readers take neither: they read immutable snapshots.
 *
 * <p>There is one instance per lock file per JVM, shared by every {@link ImageStore} open on the
 * store: POSIX record locks belong to the process, and closing any descriptor of the file would
 * silently drop a lock another instance holds.
 */
final class StoreLock implements Closeable {
    /** Work done while holding the lock. */
    interface Section<T> {
        T run() throws IOException;
    }

    private static final Map<Path, StoreLock> OPEN = new HashMap<>();

    private final Path path;
    private final ReentrantLock local = new ReentrantLock();
    private final FileChannel file;
    private int users;

    private StoreLock(Path path, FileChannel file) {
        this.path = path;
        this.file = file;
    }

    static StoreLock open(Path lockFile) throws IOException {
        Path key = lockFile.toAbsolutePath().normalize();
        synchronized (OPEN) {
            StoreLock lock = OPEN.get(key);
            if (lock == null) {
                FileChannel channel = FileChannel.open(key, StandardOpenOption.CREATE, StandardOpenOption.READ,
                        StandardOpenOption.WRITE);
                lock = new StoreLock(key, channel);
                OPEN.put(key, lock);
            }
            lock.users++;
            return lock;
        }
    }

    <T> T exclusive(Section<T> section) throws IOException {
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

    @Override
    public void close() throws IOException {
        synchronized (OPEN) {
            if (--users == 0) {
                OPEN.remove(path);
                file.close();
            }
        }
    }
}
