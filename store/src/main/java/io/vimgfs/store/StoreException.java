package io.vimgfs.store;

import java.io.IOException;

/**
 * Why a store operation was refused. Each subclass is one kind of refusal, so callers (the mount,
 * the command line) map kinds to errno values and exit codes in one place.
 */
public abstract sealed class StoreException extends IOException
        permits InvalidNameException, ImageNotFoundException, AmbiguousReferenceException,
                DigestMismatchException, ImageRejectedException, StoreLockedException,
                StoreDamagedException, StoreReadOnlyException, BlobUnknownException {

    protected StoreException(String message) {
        super(message);
    }

    protected StoreException(String message, Throwable cause) {
        super(message, cause);
    }
}
