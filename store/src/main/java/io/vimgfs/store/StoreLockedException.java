package io.vimgfs.store;

/** The store is held by another process in a way that excludes this operation. */
public final class StoreLockedException extends StoreException {
    public StoreLockedException(String message) {
        super(message);
    }
}
