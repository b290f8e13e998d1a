package io.vimgfs.fs;

/** A refusal with the errno the caller of the filesystem gets; {@link Errors} maps everything else. */
final class FsException extends Exception {
    private final Errno errno;

    FsException(Errno errno, String message) {
        super(message, null, false, false);
        this.errno = errno;
    }

    Errno errno() {
        return errno;
    }
}
