package io.vimgfs.store;

/** An image that fails the format and safety checks of SPEC §6; {@link #reason()} says which. */
public final class ImageRejectedException extends StoreException {

    /** The kinds of rejection. The mount answers EPERM for the unsafe ones and EIO for the rest. */
    public enum Reason {
        /** The file is empty. */
        EMPTY(false),
        /** Tables or data point past the end of the file. */
        TRUNCATED(false),
        /** The header or tables are malformed, or use a feature we do not understand. */
        CORRUPT(false),
        /** A QCOW2 external data file: it could read any host file. */
        EXTERNAL_DATA_FILE(true),
        /** A backing file (or other file reference) that does not resolve inside the store. */
        FORBIDDEN_BACKING(true),
        /** A backing digest that is not in the store. */
        MISSING_BACKING(true);

        private final boolean unsafe;

        Reason(boolean unsafe) {
            this.unsafe = unsafe;
        }

        /** True when the image is refused for safety rather than damage. */
        public boolean unsafe() {
            return unsafe;
        }
    }

    private final Reason reason;

    public ImageRejectedException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
