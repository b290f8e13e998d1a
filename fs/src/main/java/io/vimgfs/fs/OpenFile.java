package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * What a FUSE file handle refers to, and what may be done through it. A handle answers from
 * what it holds, never by looking its path up again: an open image stays fully usable (fstat,
 * read) after its last name is removed, as POSIX and SPEC §5 say.
 */
sealed interface OpenFile {

    /** {@code fstat(2)}: the attributes of the open file itself. */
    Attr attr();

    /** Reads what is at {@code offset}; -1 at the end. */
    int readSome(ByteBuffer into, long offset) throws IOException;

    /** Whether the kernel may keep this file's pages across opens (only for bytes that never change). */
    boolean keepCache();

    /** Whether a getattr of the path it was opened at answers from this file once the path's name is gone. */
    boolean answersForPath();

    default int write(ByteBuffer data, long offset) throws IOException, FsException {
        throw new FsException(Errno.EBADF, "not open for writing");
    }

    default void truncate(long size) throws IOException, FsException {
        throw new FsException(Errno.EROFS, "images are read-only");
    }

    /** fallocate(2): cp punches holes (mode 3) and, told EOPNOTSUPP, writes zeros instead. */
    default void fallocate(int mode) throws FsException {
        throw new FsException(Errno.EOPNOTSUPP, "space cannot be allocated or punched out");
    }

    /** close(2) of one descriptor; only here can an error reach the caller's close. */
    default void flush() throws FsException {
    }

    /** The last descriptor of the open file is gone. */
    void release() throws IOException;

    /** At unmount: let go of whatever the handle holds. */
    void closeAtUnmount();

    /**
     * An image opened for reading ({@code -o data=fuse}); its channel stays readable after the
     * image is removed, and its blob is kept until then (the daemon's descriptor counts as in use).
     */
    record ImageHandle(Attr attributes, FileChannel channel, Digest digest, ImageStore store) implements OpenFile {
        private static final System.Logger LOG = System.getLogger(ImageHandle.class.getName());

        @Override
        public Attr attr() {
            return attributes;
        }

        @Override
        public int readSome(ByteBuffer into, long offset) throws IOException {
            return channel.read(into, offset);
        }

        @Override
        public boolean keepCache() {
            return true;
        }

        /** An open image keeps answering stat, as POSIX says of an unlinked file (SPEC §5). */
        @Override
        public boolean answersForPath() {
            return true;
        }

        @Override
        public void release() throws IOException {
            channel.close();
            if (store.image(digest).isEmpty()) {
                store.collectIfUnused(digest); // removed while we read it: gone now, unless someone else has it open
            }
        }

        @Override
        public void closeAtUnmount() {
            try {
                channel.close();
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "closing an image at unmount: " + e.getMessage());
            }
        }
    }

    /** A file in {@code incoming/}; only a writer's flush places it. */
    record UploadHandle(IncomingFile file, boolean writer, IncomingArea area, ImageStore store) implements OpenFile {

        @Override
        public Attr attr() {
            return StoreView.uploadAttr(file);
        }

        @Override
        public int readSome(ByteBuffer into, long offset) throws IOException {
            return file.read(into, offset);
        }

        @Override
        public boolean keepCache() {
            return false;
        }

        /**
         * A removed upload is abandoned and a renamed one answers at its new name: its old path
         * must say it is gone.
         */
        @Override
        public boolean answersForPath() {
            return false;
        }

        @Override
        public int write(ByteBuffer data, long offset) throws IOException, FsException {
            requireWriter();
            return file.write(data, offset);
        }

        @Override
        public void truncate(long size) throws IOException, FsException {
            requireWriter();
            file.truncate(size);
        }

        /**
         * Plain preallocation (mode 0) fails with EPERM: told EOPNOTSUPP, glibc's posix_fallocate
         * would write zeros instead, and libvirt's vol-create-as would then store an all-zero
         * image under a name it cannot find again ("Storage volume not found"); EPERM makes it
         * fail at once, and it removes the upload.
         */
        @Override
        public void fallocate(int mode) throws FsException {
            if (mode != 0) {
                OpenFile.super.fallocate(mode);
            }
            throw new FsException(Errno.EPERM, "an upload cannot be preallocated: write the image's bytes"
                    + " (libvirt: virsh vol-upload or cp, not vol-create-as)");
        }

        /** A writer's close places the upload (SPEC §4); the errno reaches the writer's close. */
        @Override
        public void flush() throws FsException {
            if (!writer) {
                return;
            }
            Errno failure = file.place(store);
            if (file.state() == IncomingFile.State.PLACED || file.state() == IncomingFile.State.FAILED) {
                area.forget(file);
            }
            if (failure != null) {
                throw new FsException(failure, "placing incoming/" + file.name() + " failed");
            }
        }

        @Override
        public void release() {
            if (file.closed() && file.abandonIfEmpty()) {
                area.forget(file);
            }
        }

        @Override
        public void closeAtUnmount() {
            // the area closes every upload at unmount
        }

        private void requireWriter() throws FsException {
            if (!writer) {
                throw new FsException(Errno.EBADF, "incoming/" + file.name() + " is not open for writing");
            }
        }
    }
}
