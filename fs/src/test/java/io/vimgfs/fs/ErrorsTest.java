package io.vimgfs.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vimgfs.store.StoreReadOnlyException;
import java.io.IOException;
import java.nio.file.FileSystemException;
import org.junit.jupiter.api.Test;

/** Which errno a writer sees for the store's failures (the errno cp and rm print). */
class ErrorsTest {
    @Test
    void aStoreFilesystemThatRefusesWritesIsEroFsNotEio() {
        // an ext4 aborted after an error: creating the staging file, and appending to the open journal
        assertEquals(Errno.EROFS, Errors.errnoOf(new FileSystemException("/s/.vimgfs/staging/x", null, "Read-only file system")));
        assertEquals(Errno.EROFS, Errors.errnoOf(new IOException("Read-only file system")));
        assertEquals(Errno.EROFS, Errors.errnoOf(new IOException("commit failed", new IOException("Read-only file system"))));
        assertEquals(Errno.EROFS, Errors.errnoOf(new StoreReadOnlyException("store /s is on a read-only filesystem")));
    }

    @Test
    void otherFailuresKeepTheirErrno() {
        assertEquals(Errno.ENOSPC, Errors.errnoOf(new IOException("No space left on device")));
        assertEquals(Errno.EIO, Errors.errnoOf(new IOException("Input/output error")));
    }
}
