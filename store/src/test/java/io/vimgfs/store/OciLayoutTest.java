package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** index.json is the store's catalog on disk: writing and reading it back must lose nothing. */
class OciLayoutTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Property(tries = 300)
    void indexJsonRoundTripsNamesDigestsAndCachedMetadata(@ForAll("catalogs") Catalog catalog) throws Exception {
        byte[] written = OciLayout.indexJson(catalog);
        OciLayout.Index index = OciLayout.parseIndex(written);

        Map<ImageName, Digest> names = new TreeMap<>();
        Set<Digest> layers = new HashSet<>();
        for (OciLayout.Entry entry : index.entries()) {
            StoredImage cached = entry.cached().orElseThrow(() -> new AssertionError("no cached metadata: " + entry.raw()));
            StoredImage original = catalog.image(cached.layer()).orElseThrow();
            assertEquals(original, cached, "every field survives the index annotations");
            assertEquals(original.manifest(), entry.manifest());
            assertEquals(original.manifestSize(), entry.manifestSize());
            entry.name().ifPresentOrElse(
                    name -> assertEquals(null, names.put(name, cached.layer()), "one descriptor per name"),
                    () -> assertTrue(catalog.namesOf(cached.layer()).isEmpty(), "only a nameless image has a nameless descriptor"));
            layers.add(cached.layer());
            String refName = entry.raw().path("annotations").path(OciLayout.REF_NAME).asText("");
            assertEquals(entry.name().map(ImageName::toString).orElse(""), refName);
        }
        assertEquals(catalog.names(), names);
        assertEquals(catalog.images().stream().map(StoredImage::layer).collect(java.util.stream.Collectors.toSet()), layers);
        assertEquals(catalog.foreign(), index.foreign(), "foreign descriptors are kept verbatim");

        // Reading and writing again changes nothing: a reload followed by a commit is a no-op on disk.
        List<StoredImage> reread = index.entries().stream().map(e -> e.cached().orElseThrow()).toList();
        Catalog again = Catalog.of(reread, names, index.foreign());
        assertArrayEquals(written, OciLayout.indexJson(again));
    }

    /**
     * The catalog cache a mount opens instead of parsing index.json says exactly what that
     * index.json says, and is refused for any other index.json and when torn.
     */
    @Property(tries = 200)
    void theCatalogCacheReadsBackWhatItsIndexSaysAndOnlyForThatIndex(@ForAll("catalogs") Catalog catalog) throws Exception {
        byte[] index = OciLayout.indexJson(catalog, 41);
        java.nio.file.Path file = java.nio.file.Files.createTempFile("catalog", ".cache");
        try {
            CatalogCache.write(file, index, catalog, 41, point -> { });
            CatalogCache.Loaded loaded = CatalogCache.read(file, index).orElseThrow(() -> new AssertionError("cache refused"));
            OciLayout.Index parsed = OciLayout.parseIndex(index);
            Catalog fromJson = Catalog.of(parsed.entries().stream().map(e -> e.cached().orElseThrow()).toList(),
                    namesOf(parsed), parsed.foreign());
            assertEquals(List.copyOf(fromJson.images()), List.copyOf(loaded.catalog().images()));
            assertEquals(fromJson.names(), loaded.catalog().names());
            assertEquals(fromJson.foreign(), loaded.catalog().foreign());
            assertEquals(41, loaded.generation());
            assertArrayEquals(index, OciLayout.indexJson(loaded.catalog(), 41), "it writes the same index.json again");

            byte[] other = OciLayout.indexJson(catalog, 42);
            assertEquals(Optional.empty(), CatalogCache.read(file, other), "made from another index.json: not used");
            byte[] whole = java.nio.file.Files.readAllBytes(file);
            java.nio.file.Files.write(file, java.util.Arrays.copyOf(whole, whole.length / 2));
            assertEquals(Optional.empty(), CatalogCache.read(file, index), "torn: not used");
            whole[whole.length / 2] ^= 1;
            java.nio.file.Files.write(file, whole);
            assertEquals(Optional.empty(), CatalogCache.read(file, index), "a flipped bit: not used");
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    private static Map<ImageName, Digest> namesOf(OciLayout.Index index) {
        Map<ImageName, Digest> names = new HashMap<>();
        for (OciLayout.Entry entry : index.entries()) {
            entry.name().ifPresent(name -> names.put(name, entry.cached().orElseThrow().layer()));
        }
        return names;
    }

    @Property(tries = 100)
    void descriptorsWithoutTheCacheAreStillOurs(@ForAll("catalogs") Catalog catalog) throws Exception {
        JsonNode root = JSON.readTree(OciLayout.indexJson(catalog));
        for (JsonNode descriptor : root.path("manifests")) {
            if (OciLayout.ARTIFACT_TYPE.equals(descriptor.path("artifactType").asText())) {
                ObjectNode annotations = (ObjectNode) descriptor.path("annotations");
                annotations.remove(fieldNames(annotations).stream().filter(f -> f.startsWith("io.vimgfs.")).toList());
            }
        }
        OciLayout.Index index = OciLayout.parseIndex(JSON.writeValueAsBytes(root));
        Map<ImageName, Digest> manifestsByName = new HashMap<>();
        for (OciLayout.Entry entry : index.entries()) {
            assertEquals(Optional.empty(), entry.cached(), "without the annotations the blobs must be read");
            entry.name().ifPresent(n -> manifestsByName.put(n, entry.manifest()));
        }
        Map<ImageName, Digest> expected = new HashMap<>();
        catalog.names().forEach((name, layer) -> expected.put(name, catalog.image(layer).orElseThrow().manifest()));
        assertEquals(expected, manifestsByName);
        assertEquals(catalog.foreign(), index.foreign());
    }

    private static List<String> fieldNames(JsonNode node) {
        List<String> all = new ArrayList<>();
        node.fieldNames().forEachRemaining(all::add);
        return all;
    }

    // ---- generators ----------------------------------------------------------------------

    @Provide
    Arbitrary<Catalog> catalogs() {
        Arbitrary<List<StoredImage>> images = storedImages().list().ofMaxSize(8).uniqueElements(StoredImage::layer);
        Arbitrary<List<ImageName>> names = TestNames.validName().map(OciLayoutTest::parse).list().ofMaxSize(12);
        Arbitrary<List<Integer>> targets = Arbitraries.integers().between(0, 1000).list().ofSize(12);
        Arbitrary<List<JsonNode>> foreign = foreignDescriptor().list().ofMaxSize(3);
        return Combinators.combine(images, names, targets, foreign).as((imgs, ns, ts, fs) -> {
            Map<ImageName, Digest> byName = new HashMap<>();
            if (!imgs.isEmpty()) {
                for (int i = 0; i < ns.size(); i++) {
                    byName.put(ns.get(i), imgs.get(ts.get(i) % imgs.size()).layer());
                }
            }
            return Catalog.of(imgs, byName, fs);
        });
    }

    private static ImageName parse(String text) {
        try {
            return ImageName.parse(text);
        } catch (InvalidNameException e) {
            throw new AssertionError(e);
        }
    }

    private static Arbitrary<Digest> digests() {
        return Arbitraries.strings().withChars("0123456789abcdef").ofLength(64).map(Digest::new);
    }

    private static Arbitrary<StoredImage> storedImages() {
        Arbitrary<Long> size = Arbitraries.longs().between(1, Long.MAX_VALUE / 2);
        Arbitrary<ImageFormat> format = Arbitraries.of(ImageFormat.class);
        Arbitrary<Integer> cluster = Arbitraries.of(0, 512, 65536, 2 << 20);
        Arbitrary<Optional<Digest>> backing = digests().optional(0.3);
        Arbitrary<Instant> created = Combinators.combine(
                        Arbitraries.longs().between(0, 4_102_444_800L), Arbitraries.integers().between(0, 999_999_999))
                .as(Instant::ofEpochSecond);
        Arbitrary<long[]> sizes = Combinators.combine(size, size, Arbitraries.longs().between(100, 10_000))
                .as((s, v, m) -> new long[] {s, v, m});
        return Combinators.combine(digests(), sizes, format, cluster, backing, created, digests(), digests())
                .as((layer, s, fmt, cl, b, c, manifest, config) ->
                        new StoredImage(layer, s[0], fmt, s[1], cl, b, c, manifest, s[2], config));
    }

    /** Descriptors another tool (skopeo, oras) may have written into the same layout. */
    private static Arbitrary<JsonNode> foreignDescriptor() {
        return Combinators.combine(digests(), Arbitraries.strings().alpha().ofMaxLength(10),
                        Arbitraries.of("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"),
                        Arbitraries.of("", "application/vnd.example.thing", "application/vnd.vimgfs.image.v2"))
                .as((digest, tag, mediaType, artifactType) -> {
                    ObjectNode d = JSON.createObjectNode();
                    d.put("mediaType", mediaType);
                    d.put("digest", digest.toString());
                    d.put("size", 1234);
                    if (!artifactType.isEmpty()) {
                        d.put("artifactType", artifactType);
                    }
                    d.putObject("platform").put("architecture", "amd64").put("os", "linux");
                    ObjectNode a = d.putObject("annotations");
                    a.put(OciLayout.REF_NAME, tag.isEmpty() ? "latest" : tag);
                    a.put("com.example.note", "kept \u00e9 as is");
                    return d;
                });
    }

    @Property(tries = 2000)
    void createdTimesReadBackExactly(@ForAll @net.jqwik.api.constraints.LongRange(min = 0, max = 253402300799L) long seconds,
            @ForAll @net.jqwik.api.constraints.IntRange(min = 0, max = 999_999_999) int nanos) {
        java.time.Instant created = java.time.Instant.ofEpochSecond(seconds, nanos);
        assertEquals(created, OciLayout.parseInstant(created.toString()));
        java.time.Instant millis = java.time.Instant.ofEpochMilli(created.toEpochMilli());
        assertEquals(millis, OciLayout.parseInstant(millis.toString()));
    }
}
