package io.vimgfs.store;

import java.util.HexFormat;
import java.util.regex.Pattern;

/** A SHA-256 content digest: the only algorithm vimgfs stores. */
public record Digest(String hex) implements Comparable<Digest> {
    public static final String ALGORITHM = "sha256";
    private static final Pattern ALGORITHM_NAME = Pattern.compile("[a-z0-9]+(?:[+._-][a-z0-9]+)*");
    /** Longer "algorithms" are not worth a regex: its repeated group recurses per repetition and overflows the stack. */
    private static final int MAX_ALGORITHM_CHARS = 64;

    public Digest {
        if (!isHex64(hex)) {
            throw new IllegalArgumentException("not 64 lowercase hex digits: " + hex);
        }
    }

    /** Parses {@code sha256:<64 hex>}; any other algorithm or shape is an {@link InvalidNameException}. */
    public static Digest parse(String text) throws InvalidNameException {
        if (text.startsWith(ALGORITHM + ":")) {
            String hex = text.substring(ALGORITHM.length() + 1);
            if (isHex64(hex)) {
                return new Digest(hex);
            }
            throw new InvalidNameException(text, "a sha256 digest is 64 lowercase hex digits");
        }
        int colon = text.indexOf(':');
        String algorithm = colon < 0 ? "" : text.substring(0, colon);
        if (algorithm.length() <= MAX_ALGORITHM_CHARS && ALGORITHM_NAME.matcher(algorithm).matches()) {
            throw new InvalidNameException(text, "only sha256 digests are supported, not " + algorithm);
        }
        throw new InvalidNameException(text, "a digest is written sha256:<64 hex digits>");
    }

    public static Digest of(byte[] sha256) {
        return new Digest(HexFormat.of().formatHex(sha256));
    }

    public static boolean isHex64(String s) {
        if (s.length() != 64) {
            return false;
        }
        for (int i = 0; i < 64; i++) {
            char c = s.charAt(i);
            if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) {
                return false;
            }
        }
        return true; // by hand: every digest of a 10,000-image index passes here at mount
    }

    /** The first 12 hex digits, as listings show them. */
    public String shortHex() {
        return hex.substring(0, 12);
    }

    @Override
    public int compareTo(Digest other) {
        return hex.compareTo(other.hex);
    }

    @Override
    public String toString() {
        return ALGORITHM + ":" + hex;
    }
}
