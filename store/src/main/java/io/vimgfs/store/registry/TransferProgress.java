package io.vimgfs.store.registry;

/** Told how many bytes a transfer will move, then each step of it: a progress bar, or nothing. */
public interface TransferProgress {
    TransferProgress NONE = new TransferProgress() {
        @Override
        public void begin(String task, long totalBytes) {
        }

        @Override
        public void advance(long bytes) {
        }
    };

    /** A transfer of {@code totalBytes} (-1 when unknown) starts. */
    void begin(String task, long totalBytes);

    void advance(long bytes);

    /** Something the user should know about the transfer, in one line (a registry that ignores Range). */
    default void warn(String line) {
    }
}
