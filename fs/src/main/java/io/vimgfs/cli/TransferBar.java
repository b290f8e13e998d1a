package io.vimgfs.cli;

import io.vimgfs.store.registry.TransferProgress;

/** A {@link Progress} bar started once a transfer knows its size. */
final class TransferBar implements TransferProgress, AutoCloseable {
    private final boolean quiet;
    private Progress bar;

    TransferBar(boolean quiet) {
        this.quiet = quiet;
    }

    @Override
    public void begin(String task, long totalBytes) {
        if (!quiet && bar == null) {
            bar = Progress.start(task, totalBytes);
        }
    }

    @Override
    public void advance(long bytes) {
        if (bar != null) {
            bar.accept(bytes);
        }
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
