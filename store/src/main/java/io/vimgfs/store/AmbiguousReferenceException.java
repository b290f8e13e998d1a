package io.vimgfs.store;

import java.util.List;

/** A digest prefix that matches more than one image. */
public final class AmbiguousReferenceException extends StoreException {
    public AmbiguousReferenceException(String prefix, List<Digest> matches) {
        super("digest prefix '" + prefix + "' is ambiguous: it matches " + matches.size()
                + " images (" + matches.stream().limit(3).map(Digest::shortHex).toList()
                + (matches.size() > 3 ? ", …" : "") + "); give more hex digits");
    }
}
