package io.vimgfs.store;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A local image name, {@code [host[:port]/]path:tag}, in the distribution reference grammar
 * (SPEC §3). A name parsed without a tag means {@code :latest}.
 *
 * <p>Two grammars: {@link #parse} for a name about to be given, which adds the rules the mount
 * needs (no bare digest spelled by a tag or component, every entry within NAME_MAX), and
 * {@link #parseExisting} for a name an image may already have, written by an older version.
 */
public record ImageName(String repository, String tag) implements Comparable<ImageName> {
    public static final String DEFAULT_TAG = "latest";
    static final int MAX_COMPONENT_BYTES = 255;
    static final int MAX_NAME_BYTES = 4096;
    /** NAME_MAX of Linux filesystems: the longest entry {@code rsync -a} or {@code tar x} can recreate. */
    static final int MAX_ENTRY_BYTES = 255;

    private static final Pattern PATH_COMPONENT =
            Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern HOST =
            Pattern.compile("(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
                    + "(?:\\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*(?::[0-9]+)?");

    public ImageName {
        // Validated by parse(); the compact constructor only guards programming errors.
        if (repository.isEmpty() || tag.isEmpty()) {
            throw new IllegalArgumentException("empty repository or tag");
        }
    }

    /** Parses {@code repo[:tag]} as a name to give; a digest pin is not allowed here (see {@link Reference}). */
    public static ImageName parse(String text) throws InvalidNameException {
        return withoutPin(text, Reference.parse(text));
    }

    /**
     * Parses a name an image may already have, to find or remove it: older versions allowed a tag
     * or path component of 64 hex digits and by-name entries over NAME_MAX. Never use it to give a name.
     */
    public static ImageName parseExisting(String text) throws InvalidNameException {
        return withoutPin(text, Reference.parseExisting(text));
    }

    /** Checks that a name built without {@link #parse} (the record constructor is public) may be given. */
    static void checkGivable(ImageName name) throws InvalidNameException {
        parseName(name.toString(), name.toString(), true);
    }

    private static ImageName withoutPin(String text, Reference reference) throws InvalidNameException {
        if (reference.pin().isPresent()) {
            throw new InvalidNameException(text, "a name here cannot carry a digest pin (@sha256:…)");
        }
        return reference.name();
    }

    /** Parses the name part of a reference (no {@code @digest}), with the rules for new names if {@code given}. */
    static ImageName parseName(String full, String text, boolean given) throws InvalidNameException {
        checkCharacters(full, text);
        int slash = text.lastIndexOf('/');
        int colon = text.lastIndexOf(':');
        String repository = text;
        String tag = DEFAULT_TAG;
        if (colon > slash) {
            repository = text.substring(0, colon);
            tag = text.substring(colon + 1);
            if (!TAG.matcher(tag).matches()) {
                throw new InvalidNameException(full,
                        "a tag is 1 to 128 of [A-Za-z0-9_.-] and does not start with '.' or '-'");
            }
        }
        checkRepository(full, repository);
        if (given) {
            checkMountable(full, repository, tag);
        }
        return new ImageName(repository, tag);
    }

    /**
     * The rules a name must meet to show in the mount. A bare {@code <64 hex>} next to an overlay is
     * how QEMU finds its backing image (SPEC §6), so a tag or component spelling one could stand in
     * for the digest; and an entry over NAME_MAX cannot be copied out of the mount.
     */
    private static void checkMountable(String full, String repository, String tag) throws InvalidNameException {
        if (Digest.isHex64(tag)) {
            throw new InvalidNameException(full, "a tag cannot be 64 lowercase hex digits: a bare digest always means "
                    + "the image with that digest (it is how an overlay names its backing)");
        }
        String last = repository.substring(repository.lastIndexOf('/') + 1);
        for (String component : repository.split("/")) {
            if (Digest.isHex64(component)) {
                throw new InvalidNameException(full, "a path component cannot be 64 lowercase hex digits: a bare digest "
                        + "always means the image with that digest (it is how an overlay names its backing)");
            }
        }
        // Components are directories of by-name/ and tags/ (at most 255 bytes each, checked above) and a
        // tag is a tags/ entry of at most 128 bytes; only the by-name/ leaf "<last component>:<tag>" can be longer.
        int leaf = last.getBytes(StandardCharsets.UTF_8).length + 1 + tag.getBytes(StandardCharsets.UTF_8).length;
        if (leaf > MAX_ENTRY_BYTES) {
            throw new InvalidNameException(full, "the by-name/ entry '<last path component>:<tag>' would be " + leaf
                    + " bytes; a directory entry is at most " + MAX_ENTRY_BYTES + " bytes (NAME_MAX), so the last path component"
                    + " and the tag are at most " + (MAX_ENTRY_BYTES - 1) + " bytes together");
        }
    }

    private static void checkCharacters(String full, String text) throws InvalidNameException {
        if (text.isEmpty()) {
            throw new InvalidNameException(full, "a name cannot be empty");
        }
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                throw new InvalidNameException(full, "control characters and NUL are not allowed");
            }
        }
        if (text.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            throw new InvalidNameException(full, "a name is at most " + MAX_NAME_BYTES + " bytes");
        }
    }

    private static void checkRepository(String full, String repository) throws InvalidNameException {
        if (repository.isEmpty()) {
            throw new InvalidNameException(full, "the repository part is empty");
        }
        if (repository.startsWith("/") || repository.endsWith("/") || repository.contains("//")) {
            throw new InvalidNameException(full, "path components cannot be empty (no leading, trailing or repeated '/')");
        }
        String[] components = repository.split("/");
        for (int i = 0; i < components.length; i++) {
            String component = components[i];
            if (component.getBytes(StandardCharsets.UTF_8).length > MAX_COMPONENT_BYTES) {
                throw new InvalidNameException(full, "a path component is at most " + MAX_COMPONENT_BYTES + " bytes");
            }
            if (component.equals(".") || component.equals("..")) {
                throw new InvalidNameException(full, "'.' and '..' are not path components");
            }
            boolean host = i == 0 && components.length > 1 && looksLikeHost(component);
            // The host is optional in the grammar, so a first component like "a_b.c" is a valid path component.
            if (!PATH_COMPONENT.matcher(component).matches() && !(host && HOST.matcher(component).matches())) {
                throw new InvalidNameException(full, host
                        ? "a registry host is dot-separated [A-Za-z0-9-] labels with an optional :port"
                        : "a path component is lowercase [a-z0-9] runs joined by '.', '_', '__' or '-' (component '"
                                + InvalidNameException.printable(component) + "')");
            }
        }
    }

    /** Like the distribution grammar: a first component with '.' or ':', or "localhost", is a host. */
    private static boolean looksLikeHost(String component) {
        return component.contains(".") || component.contains(":") || component.equals("localhost");
    }

    /** The repository's path components, host first: {@code [example.com, os, fedora]}. */
    public List<String> components() {
        return List.of(repository.split("/"));
    }

    @Override
    public int compareTo(ImageName other) {
        int byRepository = repository.compareTo(other.repository);
        return byRepository != 0 ? byRepository : tag.compareTo(other.tag);
    }

    @Override
    public String toString() {
        return repository + ":" + tag;
    }
}
