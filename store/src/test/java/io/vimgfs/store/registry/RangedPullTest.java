package io.vimgfs.store.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vimgfs pull} of a large vimgfs image in concurrent single ranges, against a registry on
 * 127.0.0.1 that behaves as real registries and their blob storage do.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RangedPullTest {
    static final int MIB = 1 << 20;
    /** 1 MiB ranges from 1 MiB up, 4 in flight: the defaults' shape at a test's size. */
    static final Puller.Ranges RANGES = new Puller.Ranges(MIB, MIB, 4);
    static final RegistryClient.Options OPTIONS = new RegistryClient.Options(false, 5, Duration.ofMillis(10),
            Duration.ofSeconds(30));

    @TempDir
    Path dir;
    FakeRegistry registry;
    TestImage image;
    final List<String> warnings = new ArrayList<>();
    long progressed;

    @BeforeEach
    void serve() throws IOException {
        registry = new FakeRegistry();
        image = TestImage.make(dir.resolve("source"), 6 * MIB + 4321, MIB);
        image.serveFrom(registry);
    }

    @AfterEach
    void stop() {
        registry.close();
    }

    @Test
    void aLargeLayerComesInConcurrentSingleRangesByteForByte() throws Exception {
        registry.delayMillis = 50; // each range takes long enough for the others to overlap it

        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            pull(store, RANGES);

            assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
            assertEquals(image.layer().length, progressed, "the progress bar counts every byte once");
        }
        List<String> ranges = layerRequests().stream().map(r -> r.range().orElse("none")).toList();
        assertEquals(image.ranges(), ranges.size(), "one request per 1 MiB range: " + ranges);
        for (int i = 0; i < image.ranges(); i++) {
            long last = Math.min((i + 1L) * MIB, image.layer().length) - 1;
            assertTrue(ranges.contains("bytes=" + (long) i * MIB + "-" + last), "range " + i + " asked once: " + ranges);
        }
        assertTrue(registry.mostInFlight() > 1, "ranges overlap (at most " + registry.mostInFlight() + " in flight)");
        assertTrue(registry.mostInFlight() <= RANGES.inFlight(), "no more than " + RANGES.inFlight() + " in flight");
        assertEquals(List.of(), staging(), "nothing is left in the staging area");
        assertEquals(List.of(), warnings);
    }

    @Test
    void aLayerBelowTheThresholdStreamsInOneRequestAsBefore() throws Exception {
        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            pull(store, new Puller.Ranges(64L * MIB, 16L * MIB, 4));

            assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
        }
        assertEquals(List.of(Optional.empty()), layerRequests().stream().map(FakeRegistry.BlobRequest::range).toList());
    }

    @Test
    void aServerThatAnswers200ToRangeGetsTheBlobStreamedWithOneWarning() throws Exception {
        registry.ignoreRange = true;

        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            pull(store, RANGES);

            assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
        }
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).contains("ignored a Range request (HTTP 200)"), warnings.get(0));
        assertFalse(warnings.get(0).contains("\n"), "one line");
        assertEquals(List.of(), staging());
    }

    @Test
    void aWrongContentRangeFailsAndPlacesNothing() throws Exception {
        registry.wrongContentRange = true;

        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            RegistryException e = assertThrows(RegistryException.class, () -> pull(store, RANGES));

            assertEquals(RegistryException.Kind.PROTOCOL, e.kind());
            assertTrue(e.getMessage().matches(".*asked for bytes (\\d+)-\\d+ .* answered HTTP 206 with Content-Range "
                    + "'bytes [1-9]\\d*-.*"), e.getMessage());
            assertTrue(store.list().isEmpty(), "nothing placed");
            assertFalse(Files.exists(store.imagePath(image.digest())));
        }
    }

    @Test
    void a429WaitsTheRetryAfterItGives() throws Exception {
        registry.tooManyRequests = 1;

        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            pull(store, RANGES);

            assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
        }
        List<FakeRegistry.BlobRequest> requests = layerRequests();
        FakeRegistry.BlobRequest retried = requests.stream().filter(r -> r.range().equals(registry.refusedRange)
                && r.nanos() > registry.refusedAt).findFirst().orElseThrow();
        long waited = TimeUnit.NANOSECONDS.toMillis(retried.nanos() - registry.refusedAt);
        assertTrue(waited >= 950, "the next request came " + waited + " ms after the 429 with Retry-After: 1 "
                + "(the backoff alone is 10 ms)");
    }

    @Test
    void aRedirectToBlobStorageKeepsTheRangeAndDropsTheAuthorization() throws Exception {
        registry.bearer = true;
        try (FakeRegistry storage = new FakeRegistry()) {
            image.serveFrom(storage);
            registry.redirectBlobsTo = storage;

            try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
                pull(store, RANGES);

                assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
            }
            List<FakeRegistry.BlobRequest> atRegistry = layerRequests();
            assertTrue(atRegistry.stream().allMatch(r -> r.range().isPresent()), "ranges asked of the registry");
            assertTrue(atRegistry.stream().anyMatch(r -> r.authorization().isPresent()), "the registry got the token");
            List<FakeRegistry.BlobRequest> atStorage = storage.blobRequests().stream()
                    .filter(r -> r.digest().equals(image.digest().toString())).toList();
            assertEquals(image.ranges(), atStorage.size());
            assertTrue(atStorage.stream().allMatch(r -> r.range().isPresent()), "the Range header follows the redirect");
            assertTrue(atStorage.stream().noneMatch(r -> r.authorization().isPresent()),
                    "the registry's token never reaches the storage host");
        }
    }

    @Test
    void aTokenThatExpiresMidPullIsRefreshed() throws Exception {
        registry.bearer = true;
        registry.revokeTokensAfter = 3;

        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            pull(store, RANGES);

            assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
        }
        assertTrue(registry.tokensIssued() >= 2, "a new token after the first stopped working: "
                + registry.tokensIssued() + " issued");
    }

    @Test
    void aFlippedByteIsADigestMismatchThatPlacesNothingAndRemovesThePartialState() throws Exception {
        registry.flipByteAt = 5L * MIB + 17;

        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            RegistryException e = assertThrows(RegistryException.class, () -> pull(store, RANGES));

            assertEquals(RegistryException.Kind.DIGEST_MISMATCH, e.kind());
            assertTrue(e.getMessage().contains("not " + image.digest()), e.getMessage());
            assertTrue(store.list().isEmpty(), "nothing placed");
        }
        assertEquals(List.of(), staging(), "the partial download and its range map are gone");
    }

    private void pull(ImageStore store, Puller.Ranges ranges) throws IOException {
        TransferProgress progress = new TransferProgress() {
            @Override
            public void begin(String task, long totalBytes) {
            }

            @Override
            public synchronized void advance(long bytes) {
                progressed += bytes;
            }

            @Override
            public void warn(String line) {
                warnings.add(line);
            }
        };
        new Puller(store, OPTIONS, new CredentialLookup(Optional.empty(), Optional.empty(), java.util.Map.of(), dir),
                progress, ranges).pull(source(registry), Reference.parse("pulled:1"), new Puller.Choice("amd64", "qemu"));
    }

    static RegistryReference source(FakeRegistry registry) throws IOException {
        return RegistryReference.parse("docker://" + registry.host() + "/" + TestImage.REPOSITORY + ":1");
    }

    private List<FakeRegistry.BlobRequest> layerRequests() {
        return registry.blobRequests().stream().filter(r -> r.digest().equals(image.digest().toString())).toList();
    }

    private List<Path> staging() throws IOException {
        try (Stream<Path> files = Files.list(dir.resolve("store/.vimgfs/staging"))) {
            return files.toList();
        }
    }
}
