package io.vimgfs.store;

/** Content names a blob the store does not have and that was not pushed with it. */
public final class BlobUnknownException extends StoreException {
    public BlobUnknownException(Digest digest, String what) {
        super(what + " " + digest + " is not in the store and was not pushed");
    }
}
