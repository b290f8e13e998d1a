package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The store as an OCI distribution registry shows it: a repository per name's repository, its
 * tags, each image's manifest exactly as the layout holds it (so a pull elsewhere gets the same
 * digests), and blobs by digest. Descriptors of {@code index.json} that another tool wrote
 * (skopeo into the layout) are shown too when their {@code org.opencontainers.image.ref.name}
 * is a {@code REPO:TAG}. Each call reads the catalog as it is now: call {@link ImageStore#refresh}
 * first to see what other processes placed.
 */
public final class RegistryContent {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A manifest (or index) as stored: its digest, media type and bytes. */
    public record Manifest(Digest digest, String mediaType, byte[] bytes) {
    }

    /** A stored blob's file (never write to it) and size. */
    public record Blob(Path file, long size) {
    }

    private final ImageStore store;
    /** The last {@link #tagged} map and the generation it was built at: a request costs a map lookup. */
    private volatile Tagged cached;

    public RegistryContent(ImageStore store) {
        this.store = store;
    }

    /** Every repository that has a tag, in lexical order. */
    public SortedSet<String> repositories() {
        return new TreeSet<>(tagged().keySet());
    }

    /** The tags of a repository in lexical order; empty when it has none (the registry's NAME_UNKNOWN). */
    public List<String> tags(String repository) {
        return List.copyOf(tagged().getOrDefault(repository, new TreeMap<>()).keySet());
    }

    /** The manifest a tag names in a repository, or one of the repository's by {@code sha256:<hex>}. */
    public Optional<Manifest> manifest(String repository, String reference) throws IOException {
        TreeMap<String, Descriptor> tags = tagged().getOrDefault(repository, new TreeMap<>());
        Optional<Descriptor> found;
        if (reference.startsWith("sha256:")) {
            found = tags.values().stream().filter(d -> d.digest().toString().equals(reference)).findFirst();
        } else {
            found = Optional.ofNullable(tags.get(reference));
        }
        if (found.isEmpty()) {
            return Optional.empty();
        }
        try {
            return Optional.of(new Manifest(found.get().digest(), found.get().mediaType(),
                    Files.readAllBytes(store.imagePath(found.get().digest()))));
        } catch (NoSuchFileException e) {
            return Optional.empty(); // removed since the catalog was read
        }
    }

    /** A blob of the store by digest, if it is there. */
    public Optional<Blob> blob(Digest digest) throws IOException {
        Path file = store.imagePath(digest);
        try {
            return Optional.of(new Blob(file, Files.size(file)));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
    }

    /**
     * The descriptors of the repository's manifests whose {@code subject} is {@code subject}, as the
     * referrers API lists them ({@code artifactType} from the manifest, else its config's media type).
     */
    public List<ObjectNode> referrers(String repository, Digest subject) throws IOException {
        List<ObjectNode> found = new ArrayList<>();
        TreeSet<Digest> seen = new TreeSet<>();
        for (Descriptor descriptor : tagged().getOrDefault(repository, new TreeMap<>()).values()) {
            if (!seen.add(descriptor.digest())) {
                continue;
            }
            byte[] bytes;
            try {
                bytes = Files.readAllBytes(store.imagePath(descriptor.digest()));
            } catch (NoSuchFileException e) {
                continue;
            }
            JsonNode manifest = JSON.readTree(bytes);
            if (!subject.toString().equals(manifest.path("subject").path("digest").asText())) {
                continue;
            }
            ObjectNode referrer = JSON.createObjectNode();
            referrer.put("mediaType", descriptor.mediaType());
            referrer.put("digest", descriptor.digest().toString());
            referrer.put("size", bytes.length);
            String artifactType = manifest.path("artifactType").asText(manifest.path("config").path("mediaType").asText(""));
            if (!artifactType.isEmpty()) {
                referrer.put("artifactType", artifactType);
            }
            if (manifest.path("annotations").isObject()) {
                referrer.set("annotations", manifest.path("annotations"));
            }
            found.add(referrer);
        }
        return found;
    }

    private record Descriptor(Digest digest, String mediaType) {
    }

    private record Tagged(long generation, Map<String, TreeMap<String, Descriptor>> repositories) {
    }

    private Map<String, TreeMap<String, Descriptor>> tagged() {
        long generation = store.generation(); // read before the catalog: a newer catalog is only rebuilt again
        Tagged last = cached;
        if (last == null || last.generation() != generation) {
            last = new Tagged(generation, build(store.catalog()));
            cached = last;
        }
        return last.repositories();
    }

    /** repository → tag → manifest, from the names and the foreign descriptors of one snapshot. */
    private static Map<String, TreeMap<String, Descriptor>> build(Catalog catalog) {
        Map<String, TreeMap<String, Descriptor>> repositories = new TreeMap<>();
        catalog.names().forEach((name, layer) -> catalog.image(layer).ifPresent(image -> repositories
                .computeIfAbsent(name.repository(), r -> new TreeMap<>())
                .put(name.tag(), new Descriptor(image.manifest(), OciLayout.MANIFEST_MEDIA_TYPE))));
        for (JsonNode foreign : catalog.foreign()) {
            foreignName(foreign).ifPresent(name -> {
                try {
                    Digest digest = Digest.parse(foreign.path("digest").asText());
                    repositories.computeIfAbsent(name.repository(), r -> new TreeMap<>())
                            .putIfAbsent(name.tag(), new Descriptor(digest, foreign.path("mediaType").asText()));
                } catch (InvalidNameException e) {
                    // not a sha256 descriptor: not ours to serve
                }
            });
        }
        return repositories;
    }

    private static Optional<ImageName> foreignName(JsonNode descriptor) {
        String name = descriptor.path("annotations").path(OciLayout.REF_NAME).asText("");
        if (!name.contains(":")) {
            return Optional.empty();
        }
        try {
            return Optional.of(ImageName.parse(name));
        } catch (InvalidNameException e) {
            return Optional.empty();
        }
    }
}
