package io.vimgfs.store;

import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The paths SPEC §2 gives a store's images under a mountpoint: {@code by-digest/sha256/<hex>},
 * {@code by-name/<repo>:<tag>} and {@code tags/<repo>/<tag>}. This is the one place they are
 * spelled: the mount builds its tree from these names, and the store recognises them where a
 * path outside its directory names a stored image (a backing file, SPEC §6; an overlay's chain,
 * {@link OverlayScanner}). The store knows nothing else of a mount.
 */
public final class ImagePaths {
    public static final String BY_DIGEST = "by-digest";
    /** The directory of images by digest, relative to a mountpoint. */
    public static final String DIGEST_DIR = BY_DIGEST + "/" + Digest.ALGORITHM;
    public static final String BY_NAME = "by-name";
    public static final String TAGS = "tags";
    /** How a backing file naming a stored image through a mount is written, for messages. */
    static final String BACKING_FORM = "<mountpoint>/" + DIGEST_DIR + "/<64 hex>";

    private static final Pattern ANY_BY_DIGEST = Pattern.compile(".*/" + Pattern.quote(DIGEST_DIR) + "/([0-9a-f]{64})");

    private ImagePaths() {
    }

    /** An image's entry by digest, relative to a mountpoint. */
    public static String byDigest(Digest digest) {
        return DIGEST_DIR + "/" + digest.hex();
    }

    /** The digest {@code path} names if it is the by-digest entry of an image under the mountpoint {@code root}. */
    static Optional<Digest> digestUnder(Path root, String path) {
        String prefix = root.toAbsolutePath().normalize() + "/" + DIGEST_DIR + "/";
        if (path.startsWith(prefix) && Digest.isHex64(path.substring(prefix.length()))) {
            return Optional.of(new Digest(path.substring(prefix.length())));
        }
        return Optional.empty();
    }

    /** The name ({@code repo:tag}) {@code path} spells if it is a by-name or tags entry under the mountpoint {@code root}. */
    static Optional<String> nameUnder(Path root, String path) {
        String prefix = root.toAbsolutePath().normalize() + "/";
        if (path.startsWith(prefix + TAGS + "/")) {
            String rest = path.substring(prefix.length() + TAGS.length() + 1);
            int slash = rest.lastIndexOf('/');
            return slash > 0 ? Optional.of(rest.substring(0, slash) + ":" + rest.substring(slash + 1)) : Optional.empty();
        }
        if (path.startsWith(prefix + BY_NAME + "/")) {
            return Optional.of(path.substring(prefix.length() + BY_NAME.length() + 1));
        }
        return Optional.empty();
    }

    /**
     * The digest of any path ending in a by-digest entry, whatever comes before it: a mount this
     * process has no record of (keeping too much is the safe mistake).
     */
    static Optional<Digest> digestAtEnd(String path) {
        Matcher byDigest = ANY_BY_DIGEST.matcher(path);
        return byDigest.matches() ? Optional.of(new Digest(byDigest.group(1))) : Optional.empty();
    }
}
