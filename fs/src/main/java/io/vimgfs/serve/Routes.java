package io.vimgfs.serve;

import io.vimgfs.serve.RegistryError.Code;
import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.InvalidNameException;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The distribution API's routes, matched on the raw path, and the checks every name, tag and
 * digest passes before it reaches the store: a percent-encoded byte, a {@code ..}, an upper-case
 * letter or an overlong name is {@code NAME_INVALID}; anything but {@code sha256:<64 hex>} is
 * {@code DIGEST_INVALID}.
 */
final class Routes {
    enum Kind { BASE, CATALOG, TAGS, MANIFEST, UPLOADS, UPLOAD, BLOB, REFERRERS }

    /** A matched route: its repository (empty for BASE and CATALOG) and its last segment. */
    record Route(Kind kind, String repository, String reference) {
    }

    static final int MAX_NAME = 255;
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
    private static final Pattern[] PATTERNS = {
        Pattern.compile("/v2/?"),
        Pattern.compile("/v2/_catalog"),
        Pattern.compile("/v2/(.+)/tags/list"),
        Pattern.compile("/v2/(.+)/manifests/([^/]+)"),
        Pattern.compile("/v2/(.+)/blobs/uploads/?"),
        Pattern.compile("/v2/(.+)/blobs/uploads/([^/]+)"),
        Pattern.compile("/v2/(.+)/blobs/([^/]+)"),
        Pattern.compile("/v2/(.+)/referrers/([^/]+)"),
    };

    private Routes() {
    }

    static Optional<Route> match(String rawPath) throws RegistryError {
        for (Kind kind : Kind.values()) {
            Matcher m = PATTERNS[kind.ordinal()].matcher(rawPath);
            if (m.matches()) {
                String repository = m.groupCount() >= 1 ? m.group(1) : "";
                if (!repository.isEmpty()) {
                    checkName(repository);
                }
                return Optional.of(new Route(kind, repository, m.groupCount() >= 2 ? m.group(2) : ""));
            }
        }
        return Optional.empty();
    }

    static void checkName(String repository) throws RegistryError {
        if (repository.length() > MAX_NAME) {
            throw new RegistryError(Code.NAME_INVALID, "a repository name is at most " + MAX_NAME + " characters");
        }
        if (repository.indexOf('%') >= 0) {
            throw new RegistryError(Code.NAME_INVALID, "repository " + repository + ": encoded characters are not allowed");
        }
        try {
            ImageName.parse(repository + ":" + ImageName.DEFAULT_TAG);
        } catch (InvalidNameException e) {
            throw new RegistryError(Code.NAME_INVALID, e.getMessage());
        }
    }

    static String checkTag(String tag) throws RegistryError {
        if (!TAG.matcher(tag).matches()) {
            throw new RegistryError(Code.TAG_INVALID, "tag " + tag + " is not [A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
        }
        return tag;
    }

    /** A manifest reference: a digest when it has a colon, else a tag. */
    static void checkReference(String reference) throws RegistryError {
        if (isDigest(reference)) {
            digest(reference);
        } else {
            checkTag(reference);
        }
    }

    static boolean isDigest(String reference) {
        return reference.indexOf(':') >= 0;
    }

    static Digest digest(String text) throws RegistryError {
        try {
            return Digest.parse(text);
        } catch (InvalidNameException | IllegalArgumentException e) {
            throw new RegistryError(Code.DIGEST_INVALID, "digest " + text + ": " + e.getMessage()
                    + " (this registry keeps sha256 content)");
        }
    }
}
