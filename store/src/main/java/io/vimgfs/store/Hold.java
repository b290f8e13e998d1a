package io.vimgfs.store;

import java.nio.file.Path;
import java.time.Instant;

/** Something that keeps images beyond their names: one image, or every image a directory of overlays uses. */
public sealed interface Hold {
    String why();

    Instant made();

    /** What {@code hold ls} shows as the hold's subject. */
    String subject();

    /** {@code vimgfs hold add REF}: the image {@code reference} meant when the hold was made. */
    record Image(Digest digest, String reference, String why, Instant made) implements Hold {
        @Override
        public String subject() {
            return reference.equals(digest.toString()) ? digest.toString() : reference + " (" + digest + ")";
        }
    }

    /**
     * {@code vimgfs hold add --overlays DIR}: every image a qcow2 under the directory uses.
     * {@code automatic} is the libvirt default directory, held without being asked while it exists.
     */
    record Overlays(Path directory, String why, Instant made, boolean automatic) implements Hold {
        @Override
        public String subject() {
            return "overlays under " + directory + (automatic ? " (automatic: libvirt's default directory)" : "");
        }
    }
}
