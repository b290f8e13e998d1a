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
    /** Config and manifest are in blobs/; index.json still old. */
    MANIFEST_WRITTEN,
    /** The new index is written to a temporary file, not yet renamed. */
    INDEX_STAGED,
    /** index.json is replaced; blobs the change made garbage are not yet deleted. */
    INDEX_REPLACED,
    /** Garbage collection has deleted some blobs but not all. */
    SWEEPING
}
