package io.vimgfs.fs;

import com.sun.security.auth.module.UnixSystem;

/** The uid and gid of this process: the owner shown for every entry. */
final class Identity {
    private static final UnixSystem SYSTEM = new UnixSystem();

    private Identity() {
    }

    static long uid() {
        return SYSTEM.getUid();
    }

    static long gid() {
        return SYSTEM.getGid();
    }
}
