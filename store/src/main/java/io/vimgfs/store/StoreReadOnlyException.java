package io.vimgfs.store;

/** A change asked of a store whose filesystem is mounted read-only; reading it still works. */
public final class StoreReadOnlyException extends StoreException {
    public StoreReadOnlyException(String message) {
        super(message);
    }
}
