package io.vimgfs.store;

/**
 * The steps of a commit at which a crash leaves distinct states on disk. Tests inject a
 * {@link StoreOptions#crashHook()} that stops the process at one of them. Each belongs to the one
 * class whose protocol passes it, and whose class comment lists it in order: {@link Admission}
 * (STAGED, STAGED_SYNCED, MANIFEST_WRITTEN), {@link CommitBatch} (LAYER_PLACED), {@link GroupCommit}
 * (JOURNAL_TORN, JOURNAL_WRITTEN, JOURNAL_SYNCED), {@link IndexWriter} (INDEX_*, JOURNAL_COMPACTED,
 * SWEEPING, CACHE_STAGED), {@link Snapshots} (JOURNAL_REPLAYED), {@link HoldFile} (HOLDS_*),
 * {@link LastUse} (LAST_USE_*), {@link SealStamp} (SEALING, SEALING_DONE), {@link PartialDownload}
 * (RANGE_*) and {@link LazyPulls} (LAZY_*).
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
    /**
     * The background rewrite has serialized the catalog, without the lock; commits may still come
     * before it takes the lock (only the background writer passes here).
     */
    INDEX_PREPARED,
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
    SWEEPING,
    /** Half of the new holds.json is in its temporary file (a hold is being added or ended). */
    HOLDS_TORN,
    /** The whole new holds.json is in its temporary file, not yet fsynced. */
    HOLDS_WRITTEN,
    /** The temporary holds file is fsynced, not yet renamed over holds.json. */
    HOLDS_STAGED,
    /** holds.json is replaced; its directory is not yet fsynced. */
    HOLDS_RENAMED,
    /** The new holds.json is durable; {@code hold add} or {@code hold rm} has not returned yet. */
    HOLDS_SYNCED,
    /** Half of the new last-use.json is in its temporary file (the mount's housekeeping). */
    LAST_USE_TORN,
    /** The whole new last-use.json is in its temporary file, not yet fsynced. */
    LAST_USE_WRITTEN,
    /** The temporary last-use file is fsynced, not yet renamed over last-use.json. */
    LAST_USE_STAGED,
    /** last-use.json is replaced; its directory is not yet fsynced. */
    LAST_USE_RENAMED,
    /** The new last-use.json is durable. */
    LAST_USE_SYNCED,
    /** The mount's sealing pass over an older store's blobs has sealed one, not yet the rest. */
    SEALING,
    /** The sealing pass has sealed every blob; {@code .vimgfs/sealed} does not say so yet. */
    SEALING_DONE,
    /** A range of a resumable download is written to its staging file, not yet fsynced. */
    RANGE_WRITTEN,
    /** The range's bytes are fsynced; the range map does not record it yet. */
    RANGE_SYNCED,
    /** The range map records the range durably. */
    RANGE_RECORDED,
    /** Half of a lazy pull's record is in its temporary file. */
    LAZY_TORN,
    /** The lazy pull's record is written to its temporary file, not yet fsynced. */
    LAZY_WRITTEN,
    /** The temporary record is fsynced, not yet renamed. */
    LAZY_STAGED,
    /** The record is renamed into place; its directory is not yet fsynced. */
    LAZY_RENAMED,
    /** The lazy pull's record is durable. */
    LAZY_SYNCED
}
