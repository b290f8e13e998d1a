package io.vimgfs.cli;

import io.vimgfs.store.registry.TransferProgress;

/** A {@link Progress} bar started once a transfer knows its size; warnings go to stderr, --quiet or not. */
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
    public void warn(String line) {
        System.err.println((bar != null ? "\n" : "") + "vimgfs: warning: " + line);
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
