package io.vimgfs.store.registry;

import io.vimgfs.store.Digest;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.Reference;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A {@code docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]} reference, as skopeo writes them. A
 * reference without a host means Docker Hub, as with docker and podman.
 */
public record RegistryReference(String registry, String repository, Optional<String> tag, Optional<Digest> digest) {
    public static final String SCHEME = "docker://";
    static final String DOCKER_HUB = "docker.io";
    private static final Pattern COMPONENT = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern HOST = Pattern.compile(
            "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?"
                    + "|\\[[0-9A-Fa-f:.]+\\](?::[0-9]{1,5})?");

    public RegistryReference {
        if (tag.isPresent() && digest.isPresent()) {
            throw new IllegalArgumentException("a reference has a tag or a digest, not both");
        }
    }

    /** Parses {@code docker://…}; the scheme is required so a URL or a local name is never mistaken for one. */
    public static RegistryReference parse(String text) throws InvalidNameException {
        if (!text.startsWith(SCHEME)) {
            throw new InvalidNameException(text, "a registry reference starts with docker://");
        }
        String rest = text.substring(SCHEME.length());
        Optional<Digest> digest = Optional.empty();
        int at = rest.indexOf('@');
        if (at >= 0) {
            digest = Optional.of(parseDigest(text, rest.substring(at + 1)));
            rest = rest.substring(0, at);
        }
        Optional<String> tag = Optional.empty();
        int colon = rest.lastIndexOf(':');
        if (colon > rest.lastIndexOf('/')) {
            tag = Optional.of(rest.substring(colon + 1));
            rest = rest.substring(0, colon);
            if (!TAG.matcher(tag.get()).matches()) {
                throw new InvalidNameException(text, "a tag is 1 to 128 of [A-Za-z0-9_.-] and does not start with '.' or '-'");
            }
            if (digest.isPresent()) {
                throw new InvalidNameException(text, "give a tag or a digest, not both");
            }
        }
        String registry = DOCKER_HUB;
        int slash = rest.indexOf('/');
        if (slash > 0 && looksLikeHost(rest.substring(0, slash))) {
            registry = rest.substring(0, slash);
            rest = rest.substring(slash + 1);
            if (!HOST.matcher(registry).matches()) {
                throw new InvalidNameException(text, "a registry host is dot-separated [A-Za-z0-9-] labels with an optional :port");
            }
        }
        if (registry.equals(DOCKER_HUB) && !rest.contains("/")) {
            rest = "library/" + rest;
        }
        for (String component : rest.split("/", -1)) {
            if (!COMPONENT.matcher(component).matches()) {
                throw new InvalidNameException(text, "a repository is '/'-separated lowercase [a-z0-9] runs joined by "
                        + "'.', '_', '__' or '-'");
            }
        }
        if (tag.isEmpty() && digest.isEmpty()) {
            tag = Optional.of("latest");
        }
        return new RegistryReference(registry, rest, tag, digest);
    }

    private static Digest parseDigest(String text, String digest) throws InvalidNameException {
        try {
            return Digest.parse(digest);
        } catch (InvalidNameException e) {
            throw new InvalidNameException(text, e.rule());
        }
    }

    private static boolean looksLikeHost(String component) {
        return component.contains(".") || component.contains(":") || component.equals("localhost")
                || component.startsWith("[");
    }

    /** The tag or digest to ask the registry for. */
    public String manifestReference() {
        return digest.map(Digest::toString).orElseGet(tag::orElseThrow);
    }

    /** Where the registry's API lives: Docker Hub's reference host is not its API host. */
    public String apiHost() {
        return registry.equals(DOCKER_HUB) ? "registry-1.docker.io" : registry;
    }

    /** The same repository at another tag or digest. */
    public RegistryReference withDigest(Digest other) {
        return new RegistryReference(registry, repository, Optional.empty(), Optional.of(other));
    }

    /**
     * The local name a pull gives by default: {@code HOST[:PORT]/REPO:TAG} as written. A reference
     * by digest alone has no tag to take, so the caller must name it.
     */
    public Optional<Reference> defaultName() throws InvalidNameException {
        if (tag.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(Reference.parse(registry + "/" + repository + ":" + tag.get()));
    }

    @Override
    public String toString() {
        return SCHEME + registry + "/" + repository + tag.map(t -> ":" + t).orElse("") + digest.map(d -> "@" + d).orElse("");
    }
}
