package io.vimgfs.fs;

import io.vimgfs.store.AmbiguousReferenceException;
import io.vimgfs.store.DigestMismatchException;
import io.vimgfs.store.ImageNotFoundException;
import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.StoreDamagedException;
import io.vimgfs.store.StoreException;
import io.vimgfs.store.StoreLockedException;
import io.vimgfs.store.StoreReadOnlyException;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

/** The one place where failures become errno values (SPEC §3–§6). */
final class Errors {
    private Errors() {
    }

    static Errno errnoOf(Throwable failure) {
        if (failure instanceof FsException fs) {
            return fs.errno();
        }
        if (failure instanceof StoreException store) {
            return errnoOf(store);
        }
        if (failure instanceof NoSuchFileException) {
            return Errno.ENOENT;
        }
        if (failure instanceof AccessDeniedException) {
            return Errno.EACCES;
        }
        if (failure instanceof ClosedChannelException) {
            return Errno.EBADF;
        }
        if (failure instanceof IOException io && isNoSpace(io)) {
            return Errno.ENOSPC;
        }
        if (failure instanceof IOException io && isReadOnly(io)) {
            return Errno.EROFS;
        }
        return Errno.EIO;
    }

    private static Errno errnoOf(StoreException failure) {
        if (failure instanceof InvalidNameException) {
            return Errno.EINVAL;
        }
        if (failure instanceof ImageNotFoundException || failure instanceof AmbiguousReferenceException) {
            return Errno.ENOENT;
        }
        if (failure instanceof DigestMismatchException) {
            return Errno.EIO;
        }
        if (failure instanceof ImageRejectedException rejected) {
            if (rejected.reason() == ImageRejectedException.Reason.EMPTY) {
                return Errno.EINVAL;
            }
            return rejected.reason().unsafe() ? Errno.EPERM : Errno.EIO;
        }
        if (failure instanceof StoreLockedException) {
            return Errno.EBUSY;
        }
        if (failure instanceof StoreReadOnlyException) {
            return Errno.EROFS;
        }
        if (failure instanceof StoreDamagedException) {
            return Errno.EIO;
        }
        return Errno.EIO;
    }

    /** The JDK reports ENOSPC only in the message ("No space left on device"). */
    static boolean isNoSpace(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t.getMessage() != null && t.getMessage().contains("No space left on device")) {
                return true;
            }
        }
        return false;
    }

    /**
     * The store's filesystem refused a write with EROFS, the JDK says so only in the message; an
     * ext4 aborted after an error does this while still mounted rw, and the writer should see why.
     */
    static boolean isReadOnly(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t.getMessage() != null && t.getMessage().contains("Read-only file system")) {
                return true;
            }
        }
        return false;
    }

    /** True for failures that are the caller's doing, logged briefly rather than with a stack trace. */
    static boolean expected(Throwable failure) {
        return failure instanceof FsException || failure instanceof StoreException
                || failure instanceof NoSuchFileException || isNoSpace(failure) || isReadOnly(failure);
    }
}
