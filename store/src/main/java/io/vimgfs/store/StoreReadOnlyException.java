package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;

/**
 * A change asked of a store whose filesystem refuses writes; reading it still works. The
 * filesystem is mounted read-only, or it still says {@code rw} but answers writes with EROFS, as
 * ext4 does once an error has aborted its journal ({@code abort,emergency_ro} in /proc/mounts).
 */
public final class StoreReadOnlyException extends StoreException {
    /** strerror(EROFS): the JDK names the errno only in a FileSystemException's reason. */
    private static final String EROFS = "Read-only file system";
    private static final String STILL_WORKS = "ls, inspect, status and fsck without --repair work";

    public StoreReadOnlyException(String message) {
        super(message);
    }

    /** For {@code purpose} ("add an image") on a store whose filesystem is mounted read-only. */
    static StoreReadOnlyException mountedReadOnly(Path store, String purpose) {
        return new StoreReadOnlyException("store " + store + " is on a read-only filesystem: cannot " + purpose
                + " (" + STILL_WORKS + "; remount it read-write to change it)");
    }

    /** For {@code purpose} on a store whose filesystem, mounted rw, refused to write {@code refused}. */
    public static StoreReadOnlyException writesRefused(Path store, String purpose, Path refused) {
        return new StoreReadOnlyException("store " + store + " is on a read-only filesystem: cannot " + purpose
                + " (" + STILL_WORKS + "; it refused to write " + refused
                + ", as an ext4 does after an error: see dmesg, then unmount it and run e2fsck)");
    }

    /** Whether {@code failure} is a filesystem refusing a write with EROFS, whatever its mount flags say. */
    public static boolean isWriteRefused(IOException failure) {
        return failure instanceof FileSystemException fs && EROFS.equals(fs.getReason());
    }
}
