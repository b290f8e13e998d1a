package io.vimgfs.store;

/** No image answers to the given name or digest. */
public final class ImageNotFoundException extends StoreException {
    public ImageNotFoundException(String reference) {
        super("no image named '" + InvalidNameException.printable(reference) + "'");
    }
}
