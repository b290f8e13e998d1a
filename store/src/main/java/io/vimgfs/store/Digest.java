package io.vimgfs.store;

import java.util.HexFormat;
import java.util.regex.Pattern;

/** A SHA-256 content digest: the only algorithm vimgfs stores. */
public record Digest(String hex) implements Comparable<Digest> {
    public static final String ALGORITHM = "sha256";
    private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern ALGORITHM_PREFIX = Pattern.compile("[a-z0-9]+([+._-][a-z0-9]+)*:.*");

    public Digest {
        if (!HEX64.matcher(hex).matches()) {
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
        if (ALGORITHM_PREFIX.matcher(text).matches()) {
            String algorithm = text.substring(0, text.indexOf(':'));
            throw new InvalidNameException(text, "only sha256 digests are supported, not " + algorithm);
        }
        throw new InvalidNameException(text, "a digest is written sha256:<64 hex digits>");
    }

    public static Digest of(byte[] sha256) {
        return new Digest(HexFormat.of().formatHex(sha256));
    }

    public static boolean isHex64(String s) {
        return HEX64.matcher(s).matches();
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
