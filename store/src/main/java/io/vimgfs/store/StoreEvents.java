package io.vimgfs.store;

/**
 * What a store tells whoever watches its work in this process (the mount's metrics): how long
 * each journal frame and index.json rewrite took, and the bytes it deleted. Called on the
 * committing or collecting thread, under the store's lock, so a watcher only counts: it must
 * not block and must not throw.
 */
public interface StoreEvents {
    StoreEvents NONE = new StoreEvents() {
    };

    /** A journal frame of {@code changes} changes was written and fsynced (the commit point). */
    default void journalAppended(long nanos, int changes) {
    }

    /** index.json was rewritten: written, fsynced, renamed into place, its directory fsynced. */
    default void indexWritten(long nanos, int bytes) {
    }

    /** Blobs or staging files nothing keeps were deleted: by gc, a sweep after a last name went, or a close. */
    default void deleted(int files, long bytes) {
    }
}
