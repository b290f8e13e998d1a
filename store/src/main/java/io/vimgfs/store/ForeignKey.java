package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Optional;

/**
 * What names a piece of foreign OCI content in {@code index.json} (a container image, an index, a
 * referrer pushed to {@code vimgfs serve}): a repository and a tag, written as the descriptor's
 * {@code org.opencontainers.image.ref.name} {@code REPO:TAG} as skopeo reads it, or a repository
 * and the manifest's digest for content pushed without a tag ({@code io.vimgfs.repository}).
 * Descriptors with neither (another tool's own names) have no key and are kept as they are.
 */
record ForeignKey(String repository, String reference) {
    static final String REPOSITORY = "io.vimgfs.repository";

    boolean isTag() {
        return !reference.startsWith(Digest.ALGORITHM + ":");
    }

    static Optional<ForeignKey> of(JsonNode descriptor) {
        JsonNode annotations = descriptor.path("annotations");
        String refName = annotations.path(OciLayout.REF_NAME).asText("");
        if (!refName.isEmpty()) {
            try {
                ImageName name = ImageName.parse(refName);
                return refName.contains(":") ? Optional.of(new ForeignKey(name.repository(), name.tag())) : Optional.empty();
            } catch (InvalidNameException e) {
                return Optional.empty();
            }
        }
        String repository = annotations.path(REPOSITORY).asText("");
        String digest = descriptor.path("digest").asText("");
        return repository.isEmpty() || digest.isEmpty() ? Optional.empty() : Optional.of(new ForeignKey(repository, digest));
    }

    /** Puts the key into a descriptor's annotations. */
    void annotate(ObjectNode descriptor) {
        ObjectNode annotations = descriptor.with("annotations");
        if (isTag()) {
            annotations.put(OciLayout.REF_NAME, repository + ":" + reference);
        } else {
            annotations.put(REPOSITORY, repository);
        }
    }
}
