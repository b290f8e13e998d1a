package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import jnr.ffi.LibraryLoader;
import jnr.ffi.LibraryOption;
import jnr.ffi.Runtime;
import jnr.ffi.byref.IntByReference;

/**
 * The filesystem's immutable attribute ({@code FS_IMMUTABLE_FL}, what {@code chattr +i} sets) on
 * one store's blob files: while it is set, no one, root included, can write, truncate, rename,
 * link or delete the file, or change its mode or xattrs. Where the filesystem has no such flag
 * (NFS, older tmpfs) or the process may not set it (no CAP_LINUX_IMMUTABLE), it warns once for
 * the store and every call becomes a no-op that reports {@link State#UNSUPPORTED}.
 */
final class ImmutableFlag {
    private static final System.Logger LOG = System.getLogger(ImmutableFlag.class.getName());

    /** What a blob file's flag is. */
    enum State { SET, CLEAR, UNSUPPORTED }

    /** The C library calls we need; {@code ioctl} is variadic, but on x86-64 and aarch64 a pointer passes alike. */
    public interface LibC {
        int open(String path, int flags);

        int ioctl(int fd, long request, IntByReference argument);

        int close(int fd);
    }

    // The generic Linux ioctl encoding (x86-64, aarch64): _IOR('f', 1, long), _IOW('f', 2, long).
    // The kernel reads and writes an int through the pointer whatever the size field says.
    private static final long FS_IOC_GETFLAGS = 0x80086601L;
    private static final long FS_IOC_SETFLAGS = 0x40086602L;
    private static final int FS_IMMUTABLE_FL = 0x00000010;
    private static final int O_RDONLY = 0;
    private static final int O_NOCTTY = 0x100;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_NOFOLLOW = 0x20000;
    private static final int O_CLOEXEC = 0x80000;
    private static final int OPEN_FLAGS = O_RDONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;

    private static final int EPERM = 1;
    private static final int ENOENT = 2;
    private static final int EACCES = 13;
    private static final int EINVAL = 22;
    private static final int ENOTTY = 25;
    private static final int EOPNOTSUPP = 95;

    private static volatile LibC libc;

    private final Path storeRoot;
    private final AtomicBoolean warned = new AtomicBoolean();

    ImmutableFlag(Path storeRoot) {
        this.storeRoot = storeRoot;
    }

    State get(Path file) throws IOException {
        return withFlags(file, (fd, flags) -> (flags & FS_IMMUTABLE_FL) != 0 ? State.SET : State.CLEAR);
    }

    /** Sets the flag (reading the other flags first, so they stay as they are). */
    State set(Path file) throws IOException {
        return change(file, true);
    }

    /** Clears the flag; only {@link BlobFiles#delete} calls this, right before it deletes. */
    State clear(Path file) throws IOException {
        return change(file, false);
    }

    private State change(Path file, boolean immutable) throws IOException {
        return withFlags(file, (fd, flags) -> {
            boolean was = (flags & FS_IMMUTABLE_FL) != 0;
            if (was != immutable) {
                IntByReference wanted = new IntByReference(immutable ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL);
                if (lib().ioctl(fd, FS_IOC_SETFLAGS, wanted) != 0) {
                    return failed(file, "set the immutable flag of", errno());
                }
            }
            return immutable ? State.SET : State.CLEAR;
        });
    }

    /** The work done on a file's open descriptor once its flags are read. */
    private interface FlagsAction {
        State apply(int fd, int flags) throws IOException;
    }

    private State withFlags(Path file, FlagsAction action) throws IOException {
        LibC c = lib();
        int fd = c.open(file.toString(), OPEN_FLAGS);
        if (fd < 0) {
            int errno = errno();
            if (errno == ENOENT) {
                throw new NoSuchFileException(file.toString());
            }
            if (errno == EACCES) {
                throw new AccessDeniedException(file.toString());
            }
            throw new FileSystemException(file.toString(), null, "open: errno " + errno);
        }
        try {
            IntByReference flags = new IntByReference(0);
            if (c.ioctl(fd, FS_IOC_GETFLAGS, flags) != 0) {
                return failed(file, "read the flags of", errno());
            }
            return action.apply(fd, flags.intValue());
        } finally {
            c.close(fd);
        }
    }

    private State failed(Path file, String what, int errno) throws IOException {
        if (errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL || errno == EPERM) {
            if (!warned.getAndSet(true)) {
                LOG.log(System.Logger.Level.WARNING, "store " + storeRoot + ": cannot " + what + " " + file + " (errno "
                        + errno + (errno == EPERM ? ", needs CAP_LINUX_IMMUTABLE" : ", the filesystem has no such flag")
                        + "); stored images are not protected against writes by root");
            }
            return State.UNSUPPORTED;
        }
        throw new FileSystemException(file.toString(), null, "cannot " + what + " the file: errno " + errno);
    }

    private static int errno() {
        return Runtime.getRuntime(lib()).getLastError();
    }

    private static LibC lib() {
        LibC loaded = libc;
        if (loaded == null) {
            synchronized (ImmutableFlag.class) {
                if (libc == null) {
                    libc = LibraryLoader.create(LibC.class).option(LibraryOption.SaveError, true).load("c");
                }
                loaded = libc;
            }
        }
        return loaded;
    }
}
