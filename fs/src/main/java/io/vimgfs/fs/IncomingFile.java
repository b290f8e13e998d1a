package io.vimgfs.fs;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * One file being written in {@code incoming/}: its upload, the writers that have it open, and
 * whether it has been placed. Placing happens once, on the first flush of a writer (SPEC §4);
 * later flushes of the same open file report the same outcome.
 */
final class IncomingFile {
    private static final System.Logger LOG = System.getLogger(IncomingFile.class.getName());

    /** Where the file is in its life. */
    enum State { WRITING, PLACED, FAILED, ABANDONED }

    private final Upload upload;
    private final Clock clock;
    private final long inode;
    private volatile String name;
    private volatile State state = State.WRITING;
    private volatile Errno failure;
    private boolean dropWhenClosed;
    private int openHandles;
    private volatile Instant modified;

    IncomingFile(String name, Upload upload, Clock clock, long inode) {
        this.name = name;
        this.upload = upload;
        this.clock = clock;
        this.inode = inode;
        this.modified = clock.instant();
    }

    /** Never blocks: listing incoming/ must not wait for a placement in progress. */
    String name() {
        return name;
    }

    synchronized void rename(String newName) {
        name = newName;
    }

    long inode() {
        return inode;
    }

    /** Dot-files ({@code .x}, rsync's temporaries) are staged but never placed on close. */
    boolean staged() {
        return isStagingName(name);
    }

    static boolean isStagingName(String relativePath) {
        return relativePath.substring(relativePath.lastIndexOf('/') + 1).startsWith(".");
    }

    State state() {
        return state;
    }

    long size() {
        return upload.size();
    }

    Instant modified() {
        return modified;
    }

    synchronized void opened() {
        openHandles++;
    }

    /** Returns true when this was the last open handle. */
    synchronized boolean closed() {
        openHandles--;
        if (openHandles == 0 && (state == State.ABANDONED || dropWhenClosed)) {
            dropQuietly();
        }
        return openHandles == 0;
    }

    private void dropQuietlyWhenClosed() {
        if (openHandles == 0) {
            dropQuietly();
        } else {
            dropWhenClosed = true;
        }
    }

    /** An upload closed by its last writer without a byte in it: nothing to place, nothing to keep. */
    synchronized boolean abandonIfEmpty() {
        if (openHandles == 0 && state == State.WRITING && !staged() && upload.size() == 0) {
            abandon();
            return true;
        }
        return false;
    }

    synchronized boolean isOpen() {
        return openHandles > 0;
    }

    int write(ByteBuffer data, long offset) throws IOException, FsException {
        requireWriting();
        try {
            int written = upload.write(data, offset);
            modified = clock.instant();
            return written;
        } catch (IOException e) {
            failWith(Errors.errnoOf(e), e);
            throw e;
        }
    }

    /** A write that failed (ENOSPC, EIO) leaves a hole in the upload: it must never be placed. */
    private synchronized void failWith(Errno errno, IOException cause) {
        if (state == State.WRITING) {
            state = State.FAILED;
            failure = errno;
            LOG.log(System.Logger.Level.WARNING, "upload incoming/" + name + " failed: " + cause.getMessage() + " [" + errno + "]");
            dropQuietlyWhenClosed();
        }
    }

    int read(ByteBuffer into, long offset) throws IOException {
        return upload.read(into, offset);
    }

    void truncate(long size) throws IOException, FsException {
        requireWriting();
        upload.truncate(size);
        modified = clock.instant();
    }

    private void requireWriting() throws FsException {
        State now = state();
        if (now == State.FAILED) {
            throw new FsException(failure, "incoming/" + name() + " failed earlier; write a new file");
        }
        if (now == State.PLACED) {
            throw new FsException(Errno.EIO, "incoming/" + name() + " was already placed; write a new file");
        }
    }

    /**
     * Places the file under its name, once. Returns null on success, else the errno every flush
     * of this file reports. Staged (dot) and abandoned files are left as they are.
     */
    synchronized Errno place(ImageStore store) {
        if (state == State.PLACED) {
            return null;
        }
        if (state == State.FAILED) {
            return failure;
        }
        if (state == State.ABANDONED || staged()) {
            return null;
        }
        if (upload.size() == 0) {
            // dd of= and shell redirections open, dup2 and close before they write: an empty
            // file is refused at this close but stays writable; if it is still empty when the
            // last descriptor goes, it is dropped (see VimgFs.release).
            LOG.log(System.Logger.Level.INFO, () -> "incoming/" + name + " is empty at close: an image needs at least one byte [EINVAL]");
            return Errno.EINVAL;
        }
        long start = System.nanoTime();
        try {
            Reference reference = Reference.parse(name);
            ImageInfo image = store.place(upload, reference);
            state = State.PLACED;
            Metrics.process().placed(image.size());
            LOG.log(System.Logger.Level.INFO, () -> String.format("placed %s %s (%s, %d bytes) in %.2f s", reference.name(),
                    image.digest(), image.format(), image.size(), Duration.ofNanos(System.nanoTime() - start).toMillis() / 1000.0));
            return null;
        } catch (Exception e) {
            state = State.FAILED;
            failure = Errors.errnoOf(e);
            Metrics.process().refused(e);
            LOG.log(System.Logger.Level.WARNING, "refused incoming/" + name + " (" + upload.size() + " bytes): "
                    + e.getMessage() + " [" + failure + "]");
            if (!Errors.expected(e)) {
                LOG.log(System.Logger.Level.WARNING, "unexpected failure placing incoming/" + name, e);
            }
            return failure;
        }
    }

    /** Drops the upload now, or when its last handle closes. */
    synchronized void abandon() {
        if (state != State.WRITING) {
            return;
        }
        state = State.ABANDONED;
        if (openHandles == 0) {
            dropQuietly();
        }
    }

    /** At unmount: close the staging file; it stays for the next mount (or gc) to clean. */
    synchronized void closeAtUnmount() {
        try {
            upload.close();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "closing incoming/" + name + ": " + e.getMessage());
        }
    }

    private void dropQuietly() {
        try {
            upload.abandon();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "dropping incoming/" + name + ": " + e.getMessage());
        }
    }
}
