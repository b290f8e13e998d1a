package io.vimgfs.store;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A request waiting for a commit, and its outcome once one is done. A committer takes it, or its
 * caller cancels it after failing to commit: whichever comes first, so a request whose caller saw
 * a failure is never committed by the next writer.
 */
final class PendingChange {
    private static final int QUEUED = 0;
    private static final int TAKEN = 1;
    private static final int CANCELLED = 2;

    private final Plan plan;
    private final AtomicInteger state = new AtomicInteger(QUEUED);
    private final CountDownLatch done = new CountDownLatch(1);
    /** Written by the committer under the store lock before {@link #finish}; read by the caller after it. */
    private Catalog result;
    private Exception failure;

    PendingChange(Plan plan) {
        this.plan = plan;
    }

    Plan plan() {
        return plan;
    }

    boolean take() {
        return state.compareAndSet(QUEUED, TAKEN);
    }

    boolean cancel() {
        return state.compareAndSet(QUEUED, CANCELLED);
    }

    boolean isDone() {
        return done.getCount() == 0;
    }

    void succeeded(Catalog after) {
        result = after;
    }

    /** Records the first failure; a later one (the frame's, after the plan's own) does not replace it. */
    void failed(Exception e) {
        if (failure == null) {
            failure = e;
        }
    }

    void finish() {
        done.countDown();
    }

    void awaitDone() throws InterruptedIOException {
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for a commit of the store");
        }
    }

    /** The catalog right after this request, or its failure thrown. */
    Catalog outcome() throws IOException {
        if (failure instanceof IOException io) {
            throw io;
        }
        if (failure instanceof RuntimeException runtime) {
            throw runtime;
        }
        return result;
    }
}
