package io.vimgfs.store;

import java.util.List;

/**
 * The plans of the name verbs ({@code tag}, {@code rm} of a name or an image): each checked
 * against the catalog the group commit finds, so a name another process just moved or removed
 * is judged as it is now.
 */
final class NameChanges {
    private NameChanges() {
    }

    /** Gives the image {@code source} means the name, moving the name if it is taken. */
    static Plan tag(String source, ImageName name) {
        return (catalog, batch) -> {
            Digest digest = catalog.resolve(source).digest();
            catalog.checkNewName(name);
            return List.of(new Change.SetName(name, digest));
        };
    }

    static Plan untag(ImageName name) {
        return (catalog, batch) -> {
            if (catalog.digestOf(name).isEmpty()) {
                throw new ImageNotFoundException(name.toString());
            }
            return List.of(new Change.RemoveName(name));
        };
    }

    static Plan removeImage(Digest digest) {
        return (catalog, batch) -> {
            if (catalog.image(digest).isEmpty()) {
                throw new ImageNotFoundException(digest.toString());
            }
            return List.of(new Change.RemoveImage(digest));
        };
    }
}
