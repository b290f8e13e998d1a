package io.vimgfs.store;

/** The store's own files (oci-layout, index.json, manifests) cannot be read as a vimgfs store. */
public final class StoreDamagedException extends StoreException {
    public StoreDamagedException(String message) {
        super(message);
    }

    public StoreDamagedException(String message, Throwable cause) {
        super(message, cause);
    }
}
