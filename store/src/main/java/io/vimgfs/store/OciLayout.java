package io.vimgfs.store;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The JSON documents of the OCI image layout (SPEC §7): {@code oci-layout}, {@code index.json},
 * and each image's manifest and config. Only this class knows their shape.
 *
 * <p>Index descriptors also carry {@code io.vimgfs.*} annotations that repeat what the manifest
 * and config say, so a store of 10,000 images opens by reading one file. They are a cache: a
 * descriptor without them (written by another tool) is read from its blobs instead.
 */
final class OciLayout {
    static final String LAYOUT_FILE = "oci-layout";
    static final String INDEX_FILE = "index.json";
    static final byte[] LAYOUT_JSON = "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8);

    static final String INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";
    static final String MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";
    static final String ARTIFACT_TYPE = "application/vnd.vimgfs.image.v1";
    static final String CONFIG_MEDIA_TYPE = "application/vnd.vimgfs.image.config.v1+json";

    static final String REF_NAME = "org.opencontainers.image.ref.name";
    static final String CREATED = "org.opencontainers.image.created";
    /** On the index itself: the last journal sequence whose changes it includes (see {@link Journal}). */
    static final String GENERATION = "io.vimgfs.generation";
    private static final String LAYER_DIGEST = "io.vimgfs.layer.digest";
    private static final String LAYER_SIZE = "io.vimgfs.layer.size";
    private static final String CONFIG_DIGEST = "io.vimgfs.config.digest";
    private static final String FORMAT = "io.vimgfs.format";
    private static final String VIRTUAL_SIZE = "io.vimgfs.virtual-size";
    private static final String CLUSTER_SIZE = "io.vimgfs.cluster-size";
    private static final String BACKING = "io.vimgfs.backing";
    private static final String CHUNKS_DIGEST = "io.vimgfs.chunks.digest";

    private static final ObjectMapper JSON = new ObjectMapper();

    private OciLayout() {
    }

    /** One descriptor of index.json that vimgfs understands; {@code name} is empty for a kept base. */
    record Entry(Optional<ImageName> name, Digest manifest, long manifestSize, Optional<StoredImage> cached,
            JsonNode raw) {
    }

    /**
     * index.json as read: our descriptors, any others (kept verbatim so we never drop them), and
     * the journal sequence it includes (0 for an index written before the journal, or by another tool).
     */
    record Index(List<Entry> entries, List<JsonNode> foreign, long generation) {
    }

    /** What a manifest references, for marking and checking. */
    record ManifestRefs(Optional<Digest> config, List<Digest> layers, List<Digest> manifests) {
    }

    static byte[] configJson(ImageFormat format, long virtualSize, int clusterSize, Optional<Digest> backing,
            Instant created) {
        ObjectNode config = JSON.createObjectNode();
        config.put("format", format.id());
        config.put("virtualSize", virtualSize);
        if (clusterSize > 0) {
            config.put("clusterSize", clusterSize);
        }
        backing.ifPresent(d -> config.put("backing", d.toString()));
        config.put("created", created.toString());
        return bytes(config);
    }

    static byte[] manifestJson(Digest config, long configSize, ImageFormat format, Digest layer, long layerSize,
            Instant created) {
        ObjectNode manifest = JSON.createObjectNode();
        manifest.put("schemaVersion", 2);
        manifest.put("mediaType", MANIFEST_MEDIA_TYPE);
        manifest.put("artifactType", ARTIFACT_TYPE);
        manifest.set("config", descriptor(CONFIG_MEDIA_TYPE, config, configSize));
        manifest.putArray("layers").add(descriptor(format.mediaType(), layer, layerSize));
        manifest.putObject("annotations").put(CREATED, created.toString());
        return bytes(manifest);
    }

    /** Reads an image from its manifest and config blobs. */
    static StoredImage parseImage(Digest manifestDigest, byte[] manifestBytes, byte[] configBytes)
            throws StoreDamagedException {
        JsonNode manifest = tree(manifestBytes, manifestDigest);
        JsonNode config = tree(configBytes, manifestDigest);
        try {
            if (!ARTIFACT_TYPE.equals(manifest.path("artifactType").asText())) {
                throw new StoreDamagedException("manifest " + manifestDigest + " is not a vimgfs image manifest");
            }
            JsonNode layer = diskLayer(manifest, manifestDigest);
            String backing = config.path("backing").asText("");
            StoredImage image = new StoredImage(
                    Digest.parse(layer.path("digest").asText()),
                    layer.path("size").asLong(),
                    ImageFormat.ofMediaType(layer.path("mediaType").asText()),
                    config.path("virtualSize").asLong(),
                    config.path("clusterSize").asInt(0),
                    backing.isEmpty() ? Optional.empty() : Optional.of(Digest.parse(backing)),
                    Instant.parse(config.path("created").asText()),
                    manifestDigest,
                    manifestBytes.length,
                    Digest.parse(manifest.path("config").path("digest").asText()));
            Optional<Digest> chunks = chunkLayer(manifest, layer, manifestDigest);
            return chunks.isPresent() ? image.withChunks(chunks.get()) : image;
        } catch (InvalidNameException | IllegalArgumentException | DateTimeParseException e) {
            throw new StoreDamagedException("manifest " + manifestDigest + " or its config is malformed: "
                    + e.getMessage(), e);
        }
    }

    /** The one disk layer of a vimgfs manifest; beside it there may be only its chunk index. */
    private static JsonNode diskLayer(JsonNode manifest, Digest manifestDigest) throws StoreDamagedException {
        JsonNode disk = null;
        for (JsonNode layer : manifest.path("layers")) {
            String mediaType = layer.path("mediaType").asText();
            if (ImageFormat.isDiskMediaType(mediaType) && disk == null) {
                disk = layer;
            } else if (!ChunkIndex.MEDIA_TYPE.equals(mediaType)) {
                throw new StoreDamagedException("manifest " + manifestDigest + " is not a vimgfs image manifest: it has"
                        + " a layer of type '" + InvalidNameException.printable(mediaType) + "' beside its disk");
            }
        }
        if (disk == null) {
            throw new StoreDamagedException("manifest " + manifestDigest + " is not a vimgfs image manifest: no disk layer");
        }
        return disk;
    }

    /** The chunk index layer the disk layer names, if any: exactly one, of the size its disk needs. */
    private static Optional<Digest> chunkLayer(JsonNode manifest, JsonNode disk, Digest manifestDigest)
            throws StoreDamagedException, InvalidNameException {
        List<JsonNode> indexes = new ArrayList<>();
        manifest.path("layers").forEach(l -> {
            if (ChunkIndex.MEDIA_TYPE.equals(l.path("mediaType").asText())) {
                indexes.add(l);
            }
        });
        String named = disk.path("annotations").path(ChunkIndex.ANNOTATION).asText("");
        if (indexes.isEmpty() && named.isEmpty()) {
            return Optional.empty();
        }
        if (indexes.size() != 1 || !named.equals(indexes.get(0).path("digest").asText())) {
            throw new StoreDamagedException("manifest " + manifestDigest + " has " + indexes.size() + " chunk index layers,"
                    + " and its disk layer names " + (named.isEmpty() ? "none" : named) + ": it needs exactly one, named");
        }
        long size = indexes.get(0).path("size").asLong(-1);
        if (size != ChunkIndex.blobSize(disk.path("size").asLong())) {
            throw new StoreDamagedException("manifest " + manifestDigest + ": its chunk index layer is " + size
                    + " bytes, not the " + ChunkIndex.blobSize(disk.path("size").asLong()) + " its disk layer needs");
        }
        return Optional.of(Digest.parse(named));
    }

    /**
     * The manifest a push sends for a stored manifest without a chunk index: the same document
     * with the index as a second layer, named by an annotation on the disk layer. Deterministic,
     * so pushing the same image twice gives the same manifest digest.
     */
    static byte[] withChunkIndex(byte[] manifestBytes, Digest manifestDigest, Digest chunks, long chunksSize)
            throws StoreDamagedException {
        ObjectNode manifest = (ObjectNode) tree(manifestBytes, manifestDigest);
        JsonNode disk = diskLayer(manifest, manifestDigest);
        if (manifest.path("layers").size() != 1) {
            throw new StoreDamagedException("manifest " + manifestDigest + " already has a chunk index");
        }
        ObjectNode annotations = disk.path("annotations").isObject() ? (ObjectNode) disk.path("annotations")
                : ((ObjectNode) disk).putObject("annotations");
        annotations.put(ChunkIndex.ANNOTATION, chunks.toString());
        ((com.fasterxml.jackson.databind.node.ArrayNode) manifest.path("layers"))
                .add(descriptor(ChunkIndex.MEDIA_TYPE, chunks, chunksSize));
        return bytes(manifest);
    }

    /** The config digest of a manifest, to read it before the image can be parsed. */
    static Digest configOf(Digest manifestDigest, byte[] manifestBytes) throws StoreDamagedException {
        ManifestRefs refs = references(manifestDigest, manifestBytes);
        return refs.config().orElseThrow(() ->
                new StoreDamagedException("manifest " + manifestDigest + " has no config"));
    }

    /** Every blob a manifest (or nested index) points at; used by GC and fsck for any descriptor. */
    static ManifestRefs references(Digest manifestDigest, byte[] manifestBytes) throws StoreDamagedException {
        JsonNode manifest = tree(manifestBytes, manifestDigest);
        try {
            Optional<Digest> config = manifest.has("config")
                    ? Optional.of(Digest.parse(manifest.path("config").path("digest").asText()))
                    : Optional.empty();
            List<Digest> layers = new ArrayList<>();
            for (JsonNode layer : manifest.path("layers")) {
                layers.add(Digest.parse(layer.path("digest").asText()));
            }
            List<Digest> manifests = new ArrayList<>();
            for (JsonNode child : manifest.path("manifests")) {
                manifests.add(Digest.parse(child.path("digest").asText()));
            }
            return new ManifestRefs(config, layers, manifests);
        } catch (InvalidNameException e) {
            throw new StoreDamagedException("manifest " + manifestDigest + " references a bad digest: "
                    + e.getMessage(), e);
        }
    }

    /** The backing digest a config names, if the config is a vimgfs one. */
    static Optional<Digest> backingOf(byte[] configBytes) {
        try {
            String backing = JSON.readTree(configBytes).path("backing").asText("");
            return backing.isEmpty() ? Optional.empty() : Optional.of(Digest.parse(backing));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    static Index parseIndex(byte[] bytes) throws StoreDamagedException {
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (IOException e) {
            throw new StoreDamagedException("index.json is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.path("manifests").isArray() || root.path("schemaVersion").asInt() != 2) {
            throw new StoreDamagedException("index.json is not an OCI image index (schemaVersion 2 with a manifests array)");
        }
        List<Entry> entries = new ArrayList<>();
        List<JsonNode> foreign = new ArrayList<>();
        for (JsonNode descriptor : root.path("manifests")) {
            Optional<Entry> entry = ourEntry(descriptor);
            if (entry.isPresent()) {
                entries.add(entry.get());
            } else {
                foreign.add(descriptor);
            }
        }
        return new Index(entries, foreign, parseGeneration(root.path("annotations").path(GENERATION).asText("0")));
    }

    /**
     * The generation of an index from its first bytes, without parsing the rest: this class
     * writes it before the manifests, so another process can tell in one small read whether an
     * index.json it sees replaced is news to it. Empty when the head does not carry one.
     */
    static java.util.OptionalLong generationInHead(byte[] head) {
        java.util.regex.Matcher m = GENERATION_IN_HEAD.matcher(new String(head, java.nio.charset.StandardCharsets.ISO_8859_1));
        return m.find() ? java.util.OptionalLong.of(parseGeneration(m.group(1))) : java.util.OptionalLong.empty();
    }

    private static final java.util.regex.Pattern GENERATION_IN_HEAD = java.util.regex.Pattern.compile(
            "^\\{[^\\[]*\"" + java.util.regex.Pattern.quote(GENERATION) + "\":\"([0-9]{1,18})\"");

    private static long parseGeneration(String text) {
        try {
            return Long.parseLong(text);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private static Optional<Entry> ourEntry(JsonNode descriptor) throws StoreDamagedException {
        if (!ARTIFACT_TYPE.equals(descriptor.path("artifactType").asText())) {
            return Optional.empty();
        }
        JsonNode annotations = descriptor.path("annotations");
        try {
            Digest manifest = Digest.parse(descriptor.path("digest").asText());
            long size = descriptor.path("size").asLong();
            String refName = annotations.path(REF_NAME).asText("");
            // Older versions wrote names the grammar now refuses to give (issue 8); they are kept, never lost.
            Optional<ImageName> name = refName.isEmpty() ? Optional.empty() : Optional.of(ImageName.parseExisting(refName));
            return Optional.of(new Entry(name, manifest, size, cachedImage(annotations, manifest, size), descriptor));
        } catch (InvalidNameException e) {
            throw new StoreDamagedException("index.json has a bad descriptor: " + e.getMessage(), e);
        }
    }

    private static Optional<StoredImage> cachedImage(JsonNode a, Digest manifest, long manifestSize) {
        if (!a.has(LAYER_DIGEST) || !a.has(CONFIG_DIGEST) || !a.has(FORMAT) || !a.has(CREATED)) {
            return Optional.empty();
        }
        try {
            String backing = a.path(BACKING).asText("");
            return Optional.of(new StoredImage(
                    Digest.parse(a.path(LAYER_DIGEST).asText()),
                    Long.parseLong(a.path(LAYER_SIZE).asText()),
                    ImageFormat.ofId(a.path(FORMAT).asText()),
                    Long.parseLong(a.path(VIRTUAL_SIZE).asText()),
                    Integer.parseInt(a.path(CLUSTER_SIZE).asText("0")),
                    backing.isEmpty() ? Optional.empty() : Optional.of(Digest.parse(backing)),
                    parseInstant(a.path(CREATED).asText()),
                    manifest,
                    manifestSize,
                    Digest.parse(a.path(CONFIG_DIGEST).asText()),
                    a.has(CHUNKS_DIGEST) ? Optional.of(Digest.parse(a.path(CHUNKS_DIGEST).asText())) : Optional.empty()));
        } catch (InvalidNameException | IllegalArgumentException | DateTimeParseException e) {
            return Optional.empty(); // a damaged cache: read the blobs instead
        }
    }

    /** index.json for the given images and names, foreign descriptors kept as they were. */
    static byte[] indexJson(Catalog catalog) {
        return indexJson(catalog, 0);
    }

    /** index.json for the catalog as of journal sequence {@code generation}. */
    static byte[] indexJson(Catalog catalog, long generation) {
        // Written by hand from cached descriptor pieces: with 10,000 names this runs on every
        // commit, and a Jackson tree of the whole index cost more than the fsync.
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(catalog.names().size() * 640 + 256);
        out.writeBytes(INDEX_HEAD);
        out.writeBytes(generationHead(generation));
        boolean first = true;
        for (StoredImage image : catalog.images()) {
            DescriptorBytes pieces = DESCRIPTORS.get(image, DescriptorBytes::of);
            List<ImageName> names = catalog.namesOf(image.layer());
            if (names.isEmpty()) {
                first = separate(out, first);
                out.writeBytes(pieces.unnamed());
            }
            for (ImageName name : names) {
                first = separate(out, first);
                out.writeBytes(pieces.beforeName());
                out.writeBytes(jsonString(name.toString()));
                out.writeBytes(pieces.afterName());
            }
        }
        for (JsonNode descriptor : catalog.foreign()) {
            first = separate(out, first);
            out.writeBytes(bytes(descriptor));
        }
        out.writeBytes(INDEX_TAIL);
        return out.toByteArray();
    }

    private static final byte[] INDEX_HEAD = ("{\"schemaVersion\":2,\"mediaType\":\"" + INDEX_MEDIA_TYPE + "\",")
            .getBytes(java.nio.charset.StandardCharsets.UTF_8);

    private static byte[] generationHead(long generation) {
        return ("\"annotations\":{\"" + GENERATION + "\":\"" + generation + "\"},\"manifests\":[")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }
    private static final byte[] INDEX_TAIL = "]}".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    private static final String NAME_MARK = "\u0000vimgfs-name\u0000";
    private static final com.github.benmanes.caffeine.cache.Cache<StoredImage, DescriptorBytes> DESCRIPTORS =
            com.github.benmanes.caffeine.cache.Caffeine.newBuilder().maximumSize(200_000).build();

    /** One image's index descriptor, serialised once, in pieces around its ref name. */
    private record DescriptorBytes(byte[] unnamed, byte[] beforeName, byte[] afterName) {
        static DescriptorBytes of(StoredImage image) {
            String named = new String(bytes(indexDescriptor(image, Optional.of(NAME_MARK))), java.nio.charset.StandardCharsets.UTF_8);
            String marker = new String(jsonString(NAME_MARK), java.nio.charset.StandardCharsets.UTF_8);
            int at = named.indexOf(marker);
            return new DescriptorBytes(bytes(indexDescriptor(image, Optional.empty())),
                    named.substring(0, at).getBytes(java.nio.charset.StandardCharsets.UTF_8),
                    named.substring(at + marker.length()).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
    }

    private static boolean separate(java.io.ByteArrayOutputStream out, boolean first) {
        if (!first) {
            out.write(',');
        }
        return false;
    }

    /**
     * Reads the UTC timestamps this class writes ({@code 2026-11-22T05:16:29.836838335Z}) without
     * java.time's formatter, which costs a tenth of a second per 10,000 at a cold mount; any other
     * RFC 3339 form goes to {@link Instant#parse}.
     */
    static Instant parseInstant(String text) {
        int length = text.length();
        if (length >= 20 && length <= 30 && text.charAt(4) == '-' && text.charAt(7) == '-' && text.charAt(10) == 'T'
                && text.charAt(13) == ':' && text.charAt(16) == ':' && text.charAt(length - 1) == 'Z'
                && (length == 20 || text.charAt(19) == '.')) {
            try {
                long day = java.time.LocalDate.of(digits(text, 0, 4), digits(text, 5, 7), digits(text, 8, 10)).toEpochDay();
                long seconds = day * 86_400 + digits(text, 11, 13) * 3600L + digits(text, 14, 16) * 60L + digits(text, 17, 19);
                int nanos = 0;
                if (length > 21) {
                    String fraction = text.substring(20, length - 1);
                    nanos = digits(fraction, 0, fraction.length()) * (int) Math.pow(10, 9 - fraction.length());
                }
                return Instant.ofEpochSecond(seconds, nanos);
            } catch (RuntimeException e) {
                // not the plain form after all
            }
        }
        return Instant.parse(text);
    }

    private static int digits(String text, int from, int to) {
        if (to - from > 9 || to <= from) {
            throw new NumberFormatException(text);
        }
        int value = 0;
        for (int i = from; i < to; i++) {
            char c = text.charAt(i);
            if (c < '0' || c > '9') {
                throw new NumberFormatException(text);
            }
            value = value * 10 + (c - '0');
        }
        return value;
    }

    /** A JSON string literal; names are plain ASCII, but escape as JSON requires anyway. */
    private static byte[] jsonString(String value) {
        StringBuilder out = new StringBuilder(value.length() + 2).append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** index.json listing exactly these descriptors, as of journal sequence {@code generation}. */
    static byte[] indexJson(List<JsonNode> descriptors, long generation) {
        ObjectNode root = JSON.createObjectNode();
        root.put("schemaVersion", 2);
        root.put("mediaType", INDEX_MEDIA_TYPE);
        root.putObject("annotations").put(GENERATION, Long.toString(generation));
        root.putArray("manifests").addAll(descriptors);
        return bytes(root);
    }

    /** Every descriptor of an index, ours and foreign, in file order of kind. */
    static List<JsonNode> descriptors(Index index) {
        List<JsonNode> all = new ArrayList<>();
        index.entries().forEach(e -> all.add(e.raw()));
        all.addAll(index.foreign());
        return all;
    }

    /** The manifest digest a raw descriptor names. */
    static Digest digestOf(JsonNode descriptor) throws StoreDamagedException {
        try {
            return Digest.parse(descriptor.path("digest").asText());
        } catch (InvalidNameException e) {
            throw new StoreDamagedException("index.json has a descriptor with a bad digest: " + e.getMessage(), e);
        }
    }

    private static ObjectNode indexDescriptor(StoredImage image, Optional<String> name) {
        ObjectNode d = descriptor(MANIFEST_MEDIA_TYPE, image.manifest(), image.manifestSize());
        d.put("artifactType", ARTIFACT_TYPE);
        ObjectNode a = d.putObject("annotations");
        name.ifPresent(n -> a.put(REF_NAME, n));
        a.put(CREATED, image.created().toString());
        a.put(LAYER_DIGEST, image.layer().toString());
        a.put(LAYER_SIZE, Long.toString(image.size()));
        a.put(CONFIG_DIGEST, image.config().toString());
        a.put(FORMAT, image.format().id());
        a.put(VIRTUAL_SIZE, Long.toString(image.virtualSize()));
        if (image.clusterSize() > 0) {
            a.put(CLUSTER_SIZE, Integer.toString(image.clusterSize()));
        }
        image.backing().ifPresent(b -> a.put(BACKING, b.toString()));
        image.chunks().ifPresent(c -> a.put(CHUNKS_DIGEST, c.toString()));
        return d;
    }

    static byte[] emptyIndexJson() {
        return indexJson(Catalog.EMPTY);
    }

    private static ObjectNode descriptor(String mediaType, Digest digest, long size) {
        ObjectNode d = JSON.createObjectNode();
        d.put("mediaType", mediaType);
        d.put("digest", digest.toString());
        d.put("size", size);
        return d;
    }

    private static JsonNode tree(byte[] bytes, Digest digest) throws StoreDamagedException {
        try {
            JsonNode node = JSON.readTree(bytes);
            if (node == null || !node.isObject()) {
                throw new StoreDamagedException("blob " + digest + " is not a JSON object");
            }
            return node;
        } catch (IOException e) {
            throw new StoreDamagedException("blob " + digest + " is not valid JSON", e);
        }
    }

    private static byte[] bytes(JsonNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise a tree we built", e);
        }
    }
}
