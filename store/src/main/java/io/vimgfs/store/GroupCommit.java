package io.vimgfs.store;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Commits the requests that queue up while another thread holds the store lock, in one journal
 * frame with one fsync, publishes the catalog they made, and undoes what a failed request or
 * frame created. The only way anything changes the catalog.
 *
 * <p>The commit protocol, under the store lock, in order:
 * <ol>
 * <li>catch up with other processes ({@link Snapshots#write});</li>
 * <li>each queued request is taken (or was cancelled by its caller: then never), and its
 *     {@link Plan} runs against the catalog so far: it installs blobs only through the
 *     {@link CommitBatch} ({@link CrashPoint#LAYER_PLACED}, {@link CrashPoint#MANIFEST_WRITTEN});
 *     a request that fails deletes the blobs it created and the others go on;</li>
 * <li>the drops its changes cause are recorded in the frame, so a replay decides nothing again;</li>
 * <li>{@code blobs/} is fsynced once for every blob the frame names, before the frame;</li>
 * <li>the frame is appended and fsynced ({@link CrashPoint#JOURNAL_TORN}, {@link CrashPoint#JOURNAL_WRITTEN},
 *     {@link CrashPoint#JOURNAL_SYNCED}): the commit point. If it cannot be written, the journal is
 *     cut back and every blob the batch created deleted; if even the cut fails they stay, for the
 *     frame may name them;</li>
 * <li>only then the new snapshot is published, what it dropped handed to the {@link IndexWriter}
 *     to sweep once index.json no longer names it, and a rewrite of index.json scheduled.</li>
 * </ol>
 * Deciding whether a nameless image stays may scan {@code /proc} and held overlay directories
 * (the {@link Retention} view is the catalog's {@link Catalog.Keeper}): that I/O happens under
 * the lock, unchecked inside the catalog, and comes out as the IOException it was.
 */
final class GroupCommit {
    private final Snapshots snapshots;
    private final Journal journal;
    private final CommitBatch batch;
    private final Retention retention;
    private final SealStamp sealStamp;
    private final IndexWriter indexWriter;
    private final StoreOptions options;
    private final Queue<PendingChange> pending = new ConcurrentLinkedQueue<>();

    GroupCommit(Snapshots snapshots, Journal journal, CommitBatch batch, Retention retention, SealStamp sealStamp,
            IndexWriter indexWriter, StoreOptions options) {
        this.snapshots = snapshots;
        this.journal = journal;
        this.batch = batch;
        this.retention = retention;
        this.sealStamp = sealStamp;
        this.indexWriter = indexWriter;
        this.options = options;
    }

    /**
     * Makes a request's changes and returns the catalog right after them, committed by whichever
     * thread takes the lock next (this one, or one whose commit was under way). A caller that sees
     * a failure can rely on its request not committing.
     */
    Catalog change(String purpose, Plan plan) throws IOException {
        PendingChange mine = new PendingChange(plan);
        pending.add(mine);
        try {
            snapshots.write(purpose, () -> {
                if (!mine.isDone()) {
                    commitPending();
                }
                return null;
            });
        } catch (IOException | RuntimeException e) {
            if (mine.cancel()) {
                throw e; // never taken, and now never will be
            }
            mine.awaitDone(); // taken by a commit that then ran into trouble: its outcome is the answer
        }
        return mine.outcome();
    }

    /**
     * Drops the nameless images nothing keeps any more (a hold ended, an overlay went, a file
     * closed), asking {@link Retention} afresh: the rule gc, collection and releases share.
     */
    Catalog dropUnkept(String purpose) throws IOException {
        return change(purpose, (c, b) -> c.dropsTo(c.keptBy(retention.at(c)).withoutUnkept()));
    }

    /** The same, considering only the images {@code among}. */
    Catalog dropUnkept(String purpose, Collection<Digest> among) throws IOException {
        return change(purpose, (c, b) -> c.dropsTo(c.keptBy(retention.at(c)).withoutUnkept(among)));
    }

    @GuardedBy("store lock")
    private void commitPending() throws IOException {
        Snapshot before = snapshots.current();
        Catalog start = before.catalog().keptBy(retention.forCommit(before.catalog()));
        List<PendingChange> taken = new ArrayList<>();
        List<Change> changes = new ArrayList<>();
        batch.begin();
        String sealed = sealStamp.before();
        try {
            Catalog after = plan(start, taken, changes);
            if (!changes.isEmpty()) {
                commit(before, after, changes);
            }
        } catch (IOException | RuntimeException e) {
            taken.forEach(p -> p.failed(e));
        } finally {
            if (batch.createdAny()) {
                sealStamp.moveOn(sealed);
            }
            batch.begin();
            taken.forEach(PendingChange::finish);
        }
    }

    /** Runs every queued request's plan in turn; returns the catalog after those that succeeded. */
    @GuardedBy("store lock")
    private Catalog plan(Catalog catalog, List<PendingChange> taken, List<Change> changes) {
        for (PendingChange next = pending.poll(); next != null; next = pending.poll()) {
            if (!next.take()) {
                continue;
            }
            taken.add(next);
            int mark = batch.mark();
            try {
                List<Change> planned = next.plan().changes(catalog, batch);
                Catalog applied = catalog.apply(planned);
                changes.addAll(planned);
                changes.addAll(catalog.dropsTo(applied)); // recorded, so a replay drops exactly these
                catalog = applied;
                next.succeeded(catalog);
            } catch (IOException | RuntimeException e) {
                next.failed(e);
                batch.undoSince(mark, e);
            }
        }
        return catalog;
    }

    /** Steps 4 to 6 of the class comment. */
    @GuardedBy("store lock")
    private void commit(Snapshot before, Catalog next, List<Change> changes) throws IOException {
        long sequence = before.sequence() + 1;
        long end;
        try {
            batch.syncBlobDir(); // the names of every blob the frame mentions, in one fsync
            long start = System.nanoTime();
            end = journal.append(before.journalEnd(), sequence, changes, options.crashHook());
            options.events().journalAppended(System.nanoTime() - start, changes.size());
        } catch (IOException | RuntimeException e) {
            try {
                journal.truncate(before.journalEnd());
                batch.undoSince(0, e);
            } catch (IOException | RuntimeException cut) {
                e.addSuppressed(cut);
            }
            throw e;
        }
        options.crashHook().accept(CrashPoint.JOURNAL_SYNCED);
        indexWriter.dropped(next.dropped());
        snapshots.publish(before.committed(next.committed(), journal.version(), end, sequence, snapshots.nextGeneration()));
        indexWriter.schedule();
    }
}
