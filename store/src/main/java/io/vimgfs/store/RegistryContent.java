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

    /** Every repository with content, in lexical order. */
    public SortedSet<String> repositories() {
        return new TreeSet<>(tagged().keySet());
    }

    /** The tags of a repository in lexical order; empty when it has none (the registry's NAME_UNKNOWN). */
    public List<String> tags(String repository) {
        Repository found = tagged().get(repository);
        return found == null ? List.of() : List.copyOf(found.tags().keySet());
    }

    /** The manifest a tag names in a repository, or one of the repository's by {@code sha256:<hex>}. */
    public Optional<Manifest> manifest(String repository, String reference) throws IOException {
        Repository in = tagged().getOrDefault(repository, Repository.EMPTY);
        Optional<Descriptor> found;
        if (reference.startsWith("sha256:")) {
            found = in.all().stream().filter(d -> d.digest().toString().equals(reference)).findFirst();
        } else {
            found = Optional.ofNullable(in.tags().get(reference));
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
        for (Descriptor descriptor : tagged().getOrDefault(repository, Repository.EMPTY).all()) {
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

    /** A repository's tags, and its manifests pushed by digest alone (referrers, an index's children). */
    private record Repository(TreeMap<String, Descriptor> tags, Map<Digest, Descriptor> untagged) {
        static final Repository EMPTY = new Repository(new TreeMap<>(), Map.of());

        List<Descriptor> all() {
            List<Descriptor> all = new ArrayList<>(tags.values());
            all.addAll(untagged.values());
            return all;
        }
    }

    private record Tagged(long generation, Map<String, Repository> repositories) {
    }

    private Map<String, Repository> tagged() {
        long generation = store.generation(); // read before the catalog: a newer catalog is only rebuilt again
        Tagged last = cached;
        if (last == null || last.generation() != generation) {
            last = new Tagged(generation, build(store.catalog()));
            cached = last;
        }
        return last.repositories();
    }

    /** repository → its tags and untagged manifests, from the names and the foreign descriptors of one snapshot. */
    private static Map<String, Repository> build(Catalog catalog) {
        Map<String, Repository> repositories = new TreeMap<>();
        catalog.names().forEach((name, layer) -> catalog.image(layer).ifPresent(image -> repository(repositories,
                name.repository()).tags().put(name.tag(), new Descriptor(image.manifest(), OciLayout.MANIFEST_MEDIA_TYPE))));
        for (JsonNode foreign : catalog.foreign()) {
            Optional<ForeignKey> key = ForeignKey.of(foreign);
            Optional<Digest> digest = ForeignContent.digestOf(foreign);
            if (key.isEmpty() || digest.isEmpty()) {
                continue; // another tool's own name, or not sha256: not ours to serve
            }
            Descriptor descriptor = new Descriptor(digest.get(), foreign.path("mediaType").asText());
            Repository in = repository(repositories, key.get().repository());
            if (key.get().isTag()) {
                in.tags().putIfAbsent(key.get().reference(), descriptor);
            } else {
                in.untagged().put(digest.get(), descriptor);
            }
        }
        return repositories;
    }

    private static Repository repository(Map<String, Repository> repositories, String name) {
        return repositories.computeIfAbsent(name, r -> new Repository(new TreeMap<>(), new java.util.HashMap<>()));
    }

    /**
     * Keeps a manifest that is not a vimgfs disk image (a container image, an index, a referrer)
     * byte for byte under a tag, or under its digest when {@code reference} is one, with the blobs
     * pushed for it (sealed uploads, installed and consumed; close them after). A blob it names
     * that is neither stored nor pushed is a {@link BlobUnknownException}. Returns its digest.
     */
    public Digest keep(String repository, String reference, byte[] manifest, String mediaType, Map<Digest, Upload> pushed)
            throws IOException {
        return store.foreign().push(repository, reference, manifest, mediaType, pushed);
    }

    /**
     * Removes kept content: a tag, or every tag and untagged entry of the repository naming that
     * digest. Disk images' names are not touched ({@link ImageStore#untag} removes those).
     * Returns how many entries went.
     */
    public int forget(String repository, String reference) throws IOException {
        List<ForeignKey> keys = new ArrayList<>();
        Catalog catalog = store.catalog();
        for (ForeignKey key : ForeignContent.keys(catalog, repository)) {
            boolean named = key.reference().equals(reference) || (reference.startsWith(Digest.ALGORITHM + ":")
                    && catalog.foreign(key).flatMap(ForeignContent::digestOf).map(d -> d.toString().equals(reference)).orElse(false));
            if (named) {
                keys.add(key);
            }
        }
        int removed = 0;
        for (ForeignKey key : keys) {
            removed += store.foreign().remove(key) ? 1 : 0;
        }
        return removed;
    }
}
