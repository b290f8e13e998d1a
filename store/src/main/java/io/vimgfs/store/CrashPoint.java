package io.vimgfs.store;

/**
 * The steps of a commit at which a crash leaves distinct states on disk. Tests inject a
 * {@link StoreOptions#crashHook()} that stops the process at one of them.
 */
public enum CrashPoint {
    /** The staged file is written but not yet fsynced. */
    STAGED,
    /** The staged file is fsynced, not yet in blobs/. */
    STAGED_SYNCED,
    /** The layer is renamed into blobs/; no manifest yet. */
    LAYER_PLACED,
    /** Config and manifest are in blobs/; the journal does not name them yet. */
    MANIFEST_WRITTEN,
    /** Half of the commit's journal frame is written: a torn tail. */
    JOURNAL_TORN,
    /** The whole frame is written, not yet fsynced. */
    JOURNAL_WRITTEN,
    /** The frame is fsynced: the commit is durable; its writer has not been told yet. */
    JOURNAL_SYNCED,
    /** The background rewrite has written the new index to a temporary file, not yet renamed. */
    INDEX_STAGED,
    /** index.json is replaced; the journal is not yet truncated, and dropped blobs not yet deleted. */
    INDEX_REPLACED,
    /** The journal is truncated after the rewrite; dropped blobs are not yet deleted. */
    JOURNAL_COMPACTED,
    /** Opening replayed the journal over index.json; a torn tail is not yet cut off. */
    JOURNAL_REPLAYED,
    /** The catalog cache of the new index.json is written to a temporary file, not yet renamed. */
    CACHE_STAGED,
    /** Garbage collection has deleted some blobs but not all. */
    SWEEPING
}
