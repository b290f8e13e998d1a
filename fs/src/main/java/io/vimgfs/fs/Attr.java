package io.vimgfs.fs;

import java.time.Instant;

/** What {@code stat} shows of one entry (SPEC §2). */
record Attr(Kind kind, int permissions, long size, long blocks, long inode, Instant modified, int links) {

    /** The three kinds of entry the tree has. */
    enum Kind {
        DIRECTORY(0040000), FILE(0100000), SYMLINK(0120000);

        private final int typeBits;

        Kind(int typeBits) {
            this.typeBits = typeBits;
        }

        int typeBits() {
            return typeBits;
        }
    }

    int mode() {
        return kind.typeBits() | permissions;
    }
}
