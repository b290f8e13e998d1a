package io.vimgfs.store.registry;

import java.io.IOException;

/**
 * A registry or download refused or failed; {@link #kind()} says how, and the message (one line)
 * names the reference and what to do.
 */
public final class RegistryException extends IOException {

    /** The kinds of failure a user acts on differently. */
    public enum Kind {
        AUTHENTICATION_REQUIRED,
        DENIED,
        NOT_FOUND,
        TLS,
        NETWORK,
        PROTOCOL,
        DIGEST_MISMATCH,
        NO_DISK
    }

    private final Kind kind;

    public RegistryException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public RegistryException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
