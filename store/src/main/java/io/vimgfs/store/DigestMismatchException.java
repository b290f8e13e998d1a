package io.vimgfs.store;

/** Content whose SHA-256 differs from the digest it was pinned to. */
public final class DigestMismatchException extends StoreException {
    private final Digest expected;
    private final Digest actual;

    public DigestMismatchException(Digest expected, Digest actual) {
        super("content digest " + actual + " does not match the pinned " + expected);
        this.expected = expected;
        this.actual = actual;
    }

    public Digest expected() {
        return expected;
    }

    public Digest actual() {
        return actual;
    }
}
