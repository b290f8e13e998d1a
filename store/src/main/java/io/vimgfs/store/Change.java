package io.vimgfs.store;

/**
 * One change of the catalog, as data: what a commit appends to the journal, what replaying the
 * journal (at open, or when another process committed) applies, and what tests generate. Every
 * change is applied by {@link Catalog#apply}, and by nothing else; blobs a change needs are
 * installed before it is made, so applying one never touches a file.
 */
sealed interface Change {
    /** Gives the image (which the catalog must hold) the name, moving it if another image had it. */
    record SetName(ImageName name, Digest image) implements Change {
    }

    /** Removes the name if it is there. */
    record RemoveName(ImageName name) implements Change {
    }

    /** Adds an image whose blobs are durable in blobs/; it stays only if a name or overlay needs it. */
    record AddImage(StoredImage image) implements Change {
    }

    /** Removes every name of the image; it stays, nameless, while an overlay needs it. */
    record RemoveImage(Digest image) implements Change {
    }

    /**
     * The image went: it had no name, no overlay, and nothing outside the catalog kept it when
     * the change was made (a hold, an overlay directory, a process). Recorded, not re-decided, so
     * a replay by another process or at the next open drops exactly what the commit dropped.
     */
    record DropImage(Digest image) implements Change {
    }

    /**
     * A hold on an image was taken or released. Holds are kept in {@code .vimgfs/holds.json} for
     * now; the record type exists so the journal format need not change when they move here.
     */
    record HoldChanged(String holder, Digest image, boolean held) implements Change {
    }

    /**
     * Names foreign OCI content (a container image, an index, a referrer) by its index.json
     * descriptor, replacing what the key named; its blobs are durable in blobs/ before the change.
     */
    record SetForeign(ForeignKey key, com.fasterxml.jackson.databind.JsonNode descriptor) implements Change {
    }

    /** Removes the foreign descriptor the key names, if any; its blobs go at the next gc. */
    record RemoveForeign(ForeignKey key) implements Change {
    }
}
