package io.vimgfs.store;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Serialises writers to one store: first among this process's threads (a {@link ReentrantLock}),
 * then across processes (an exclusive {@link FileLock} on {@code .vimgfs/lock}). Lock order: the
 * in-process lock, then the file lock. Readers take neither: they read immutable snapshots.
 */
final class StoreLock implements Closeable {
    /** Work done while holding the lock. */
    interface Section<T> {
        T run() throws IOException;
    }

    private final ReentrantLock local = new ReentrantLock();
    private final FileChannel file;

    StoreLock(Path lockFile) throws IOException {
        this.file = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
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
        file.close();
    }
}
