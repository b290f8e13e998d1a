package io.vimgfs.store;

/**
 * The catalog as of one journal sequence, and the files it was read from: the version of
 * index.json and the journal sequence that index includes, the version of the journal and where
 * its sound frames end, the last sequence the catalog includes, and the store's change counter
 * ({@link ImageStore#generation()}). Replaced whole, only by {@link Snapshots}.
 */
record Snapshot(Catalog catalog, IndexVersion index, long indexSequence, Journal.Version journalVersion,
        long journalEnd, long sequence, long generation) {
    /** Identifies one index.json file: every rewrite renames a new file into place. */
    record IndexVersion(Object fileKey, long modifiedNanos, long size) {
    }

    /** A catalog read from index.json (or its cache) at {@code sequence}, before any frame of the journal. */
    static Snapshot fromIndex(Catalog catalog, IndexVersion index, long sequence, long generation) {
        return new Snapshot(catalog, index, sequence, Journal.Version.ABSENT, Journal.START, sequence, generation);
    }

    /** Whether the journal holds changes index.json does not include yet. */
    boolean indexBehind() {
        return indexSequence < sequence;
    }

    /** After a frame appended at {@code sequence}, ending at {@code end}. */
    Snapshot committed(Catalog next, Journal.Version journal, long end, long nextSequence, long nextGeneration) {
        return new Snapshot(next, index, indexSequence, journal, end, nextSequence, nextGeneration);
    }

    /** After the journal's frames from some point were applied. */
    Snapshot replayed(Catalog next, Journal.Version journal, long end, long lastSequence, long nextGeneration) {
        return new Snapshot(next, index, indexSequence, journal, end, lastSequence, nextGeneration);
    }

    /** After index.json was rewritten with every change and the journal truncated. */
    Snapshot compacted(IndexVersion newIndex, Journal.Version emptyJournal) {
        return new Snapshot(catalog, newIndex, sequence, emptyJournal, Journal.START, sequence, generation);
    }

    /** After index.json was rewritten up to {@code includes}, older than this catalog: the journal keeps the rest. */
    Snapshot indexAt(IndexVersion newIndex, long includes) {
        return new Snapshot(catalog, newIndex, includes, journalVersion, journalEnd, sequence, generation);
    }

    /** Another process compacted: a new index.json this catalog already includes, its journal to be read from the start. */
    Snapshot reindexed(IndexVersion newIndex, long includes) {
        return new Snapshot(catalog, newIndex, includes, Journal.Version.ABSENT, Journal.START, sequence, generation);
    }
}
