package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import java.nio.channels.FileChannel;

/** What a FUSE file handle refers to. */
sealed interface OpenFile {

    /** An image opened for reading; its channel stays readable after the image is removed. */
    record ImageHandle(Digest digest, FileChannel channel) implements OpenFile {
    }

    /** A file in {@code incoming/}; only a writer's flush places it. */
    record UploadHandle(IncomingFile file, boolean writer) implements OpenFile {
    }
}
