package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * One open file description in {@code incoming/}: the upload written through it, the descriptors
 * that share it, and what its last placement put in the store. It places on a writer's flush
 * (SPEC §4); later flushes with nothing new written report the same outcome.
 *
 * <p>A shell's {@code (cat p1; cat p2) > incoming/x:1} shares one open file among processes, and
 * each one's {@code close} is a flush: the first places p1. Bytes written after a placement start
 * a new version of the upload holding the placed bytes plus the new ones, and the next flush
 * places the whole file, moving the name; the intermediate image goes with its last name (the
 * store drops an image no name or overlay refers to, so identical content that had another name
 * stays). Writes and placement are serialised on this object, so no byte changes while a
 * placement hashes and publishes.
 */
final class IncomingFile {
    private static final System.Logger LOG = System.getLogger(IncomingFile.class.getName());
    private static final int COPY_CHUNK = 1 << 20;

    /** Where the file is in its life. */
    enum State { WRITING, PLACED, FAILED, ABANDONED }

    /** What the latest placement through this file put in the store, kept readable for a next version. */
    private record Placement(ImageName name, Digest digest, long size, FileChannel bytes) {
    }

    private final IncomingArea area;
    private final Clock clock;
    private final long inode;
    private volatile String name;
    /** The version being written; null once placed, dropped or closed. Guarded by this for changes. */
    private volatile Upload upload;
    private volatile State state = State.WRITING;
    private volatile Errno failure;
    private volatile Placement placed;
    private boolean dropWhenClosed;
    private int openHandles = 1; // made by an open: the creator holds the first handle
    private volatile Instant modified;
    /** The permissions it was created with (the creator's umask applied), shown until it is placed. */
    private volatile int mode = 0644;

    IncomingFile(IncomingArea area, String name, Upload upload, Clock clock, long inode) {
        this.area = area;
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

    /** Never blocks: the size of the version being written, else of what was placed. */
    long size() {
        Upload current = upload;
        if (current != null) {
            return current.size();
        }
        Placement last = placed;
        return last == null ? 0 : last.size();
    }

    Instant modified() {
        return modified;
    }

    int mode() {
        return mode;
    }

    void mode(int permissions) {
        mode = permissions & 0777;
    }

    /** Another descriptor on this file; false if it was dropped meanwhile (the caller looks again). */
    synchronized boolean opened() {
        if (state == State.ABANDONED && openHandles == 0) {
            return false;
        }
        openHandles++;
        return true;
    }

    /** Returns true when this was the last open handle. */
    synchronized boolean closed() {
        openHandles--;
        if (openHandles > 0) {
            return false;
        }
        if (state == State.ABANDONED || dropWhenClosed) {
            dropQuietly();
        }
        closePlacement();
        area.lastClosed(this);
        return true;
    }

    /** Another upload took this name: a closed one is dropped, as a new file replaces an old one. */
    synchronized void replaced() {
        if (openHandles == 0) {
            abandon();
        }
    }

    /** An upload closed by its last writer without a byte in it: nothing to place, nothing to keep. */
    synchronized boolean abandonIfEmpty() {
        if (openHandles == 0 && state == State.WRITING && !staged() && size() == 0) {
            abandon();
            return true;
        }
        return false;
    }

    synchronized boolean isOpen() {
        return openHandles > 0;
    }

    synchronized int write(ByteBuffer data, long offset) throws IOException, FsException {
        Upload target = writable();
        try {
            int written = target.write(data, offset);
            modified = clock.instant();
            return written;
        } catch (IOException e) {
            failWith(Errors.errnoOf(e), e);
            throw e;
        }
    }

    synchronized void truncate(long size) throws IOException, FsException {
        Upload target = writable();
        try {
            target.truncate(size);
            modified = clock.instant();
        } catch (IOException e) {
            failWith(Errors.errnoOf(e), e);
            throw e;
        }
    }

    /** The version to write into: after a placement, a new one holding the placed bytes. */
    private Upload writable() throws IOException, FsException {
        if (state == State.PLACED) {
            startNextVersion();
        }
        if (state == State.FAILED) {
            throw new FsException(failure, "incoming/" + name + " failed earlier; write a new file");
        }
        if (upload == null) {
            throw new FsException(Errno.EBADF, "incoming/" + name + " is closed");
        }
        return upload;
    }

    private void startNextVersion() throws IOException, FsException {
        Placement last = placed;
        Upload next = area.beginUpload(name);
        try {
            copyInto(next, last.bytes(), last.size());
        } catch (IOException e) {
            area.uploadGone(next, true);
            throw new FsException(Errors.errnoOf(e), "incoming/" + name + " was placed as " + last.digest()
                    + " and cannot be written again: " + e.getMessage());
        }
        upload = next;
        state = State.WRITING;
        area.show(this);
        LOG.log(System.Logger.Level.INFO, () -> "incoming/" + name + " written again after it was placed as "
                + last.digest() + ": the whole file is placed again at its next close");
    }

    private static void copyInto(Upload target, FileChannel source, long size) throws IOException {
        if (source == null) {
            throw new IOException("the placed image was removed before the rest was written");
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect((int) Math.min(COPY_CHUNK, Math.max(size, 1)));
        for (long position = 0; position < size; ) {
            buffer.clear().limit((int) Math.min(buffer.capacity(), size - position));
            int n = source.read(buffer, position);
            if (n < 0) {
                throw new IOException("placed image ended at " + position + " of " + size + " bytes");
            }
            buffer.flip();
            position += target.write(buffer, position);
        }
    }

    /** A write that failed (ENOSPC, EIO) leaves a hole in the upload: it must never be placed. */
    private void failWith(Errno errno, IOException cause) {
        if (state == State.WRITING) {
            state = State.FAILED;
            failure = errno;
            LOG.log(System.Logger.Level.WARNING, "upload incoming/" + name + " failed: " + cause.getMessage() + " [" + errno + "]");
            undoIntermediatePlacement();
            if (openHandles == 0) {
                dropQuietly();
            } else {
                dropWhenClosed = true;
            }
        }
    }

    int read(ByteBuffer into, long offset) throws IOException {
        Upload current = upload;
        if (current != null) {
            return current.read(into, offset);
        }
        Placement last = placed;
        if (last == null) {
            throw new ClosedChannelException();
        }
        return last.bytes().read(into, offset);
    }

    /**
     * Places the file under its name, if anything was written since the last placement. Returns
     * null on success, else the errno every flush of this file reports. Staged (dot) and
     * abandoned files are left as they are.
     */
    synchronized Errno place(ImageStore store) {
        if (state == State.PLACED) {
            return null;
        }
        if (state == State.FAILED) {
            return failure;
        }
        if (state == State.ABANDONED || staged() || upload == null) {
            return null;
        }
        if (upload.size() == 0) {
            // dd of= and shell redirections open, dup2 and close before they write: an empty
            // file is refused at this close but stays writable; if it is still empty when the
            // last descriptor goes, it is dropped (see VimgFs.release).
            LOG.log(System.Logger.Level.INFO, () -> "incoming/" + name + " is empty at close: an image needs at least one byte [EINVAL]");
            return Errno.EINVAL;
        }
        Upload placing = upload;
        long size = placing.size();
        long start = System.nanoTime();
        try {
            Reference reference = Reference.parse(name);
            ImageInfo image = store.place(placing, reference);
            closePlacement();
            placed = new Placement(reference.name(), image.digest(), image.size(), openQuietly(store, image.digest()));
            state = State.PLACED;
            area.hide(this);
            Metrics.process().placed(image.size());
            LOG.log(System.Logger.Level.INFO, () -> String.format("placed %s %s (%s, %d bytes) in %.2f s", reference.name(),
                    image.digest(), image.format(), image.size(), Duration.ofNanos(System.nanoTime() - start).toMillis() / 1000.0));
            return null;
        } catch (Exception e) {
            state = State.FAILED;
            failure = Errors.errnoOf(e);
            Metrics.process().refused(e);
            LOG.log(System.Logger.Level.WARNING, "refused incoming/" + name + " (" + size + " bytes): "
                    + e.getMessage() + " [" + failure + "]");
            if (!Errors.expected(e)) {
                LOG.log(System.Logger.Level.WARNING, "unexpected failure placing incoming/" + name, e);
            }
            undoIntermediatePlacement();
            return failure;
        } finally {
            area.uploadGone(placing, false); // the store consumed it, placed or not
            upload = null;
        }
    }

    /**
     * The whole file was refused after a part of it was placed: the part must not stay under the
     * name as if it were the image. Only the name this file gave is removed, and only while it
     * still names that part (a window of one store change remains between the check and the untag).
     */
    private void undoIntermediatePlacement() {
        Placement last = placed;
        if (last == null) {
            return;
        }
        ImageStore store = area.store();
        try {
            if (store.image(last.name()).map(i -> i.digest().equals(last.digest())).orElse(false)) {
                store.untag(last.name());
                LOG.log(System.Logger.Level.INFO, () -> "untagged " + last.name() + " " + last.digest()
                        + ": it held only the first part of incoming/" + name + ", whose whole was refused");
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "untagging the partial " + last.name() + ": " + e.getMessage());
        }
    }

    private static FileChannel openQuietly(ImageStore store, Digest digest) {
        try {
            return store.openImage(digest);
        } catch (IOException e) {
            return null; // removed already: a later write through this file then fails (see copyInto)
        }
    }

    private void closePlacement() {
        Placement last = placed;
        if (last != null && last.bytes() != null) {
            try {
                last.bytes().close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.DEBUG, () -> "closing " + last.digest() + ": " + e.getMessage());
            }
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
        closePlacement();
        Upload current = upload;
        if (current != null) {
            upload = null;
            area.uploadGone(current, false);
            try {
                current.close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "closing incoming/" + name + ": " + e.getMessage());
            }
        }
    }

    private void dropQuietly() {
        Upload current = upload;
        if (current != null) {
            upload = null;
            area.uploadGone(current, true);
        }
    }
}
