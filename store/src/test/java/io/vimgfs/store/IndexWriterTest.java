package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The background index writer serializes the catalog without the lock, so commits go on while it
 * does (at 100,000 images that takes over a second). Commits that come in between are not in the
 * index it then writes: they stay in the journal, and nothing that index names is deleted.
 */
class IndexWriterTest {
    @TempDir
    Path dir;

    @Test
    void commitsThatOvertakeTheBackgroundWriteStayInTheJournalAndWhatTheIndexNamesIsKept() throws Exception {
        Path root = dir.resolve("store");
        Path crashed = dir.resolve("crashed");
        AtomicReference<ImageStore> opened = new AtomicReference<>();
        AtomicBoolean armed = new AtomicBoolean();
        AtomicInteger prepared = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch copied = new CountDownLatch(1);
        Consumer<CrashPoint> hook = point -> {
            if (point != CrashPoint.INDEX_PREPARED || !armed.get()) {
                return;
            }
            try {
                switch (prepared.incrementAndGet()) {
                    case 1 -> { // commits after the snapshot the writer has just serialized
                        opened.get().untag(ImageName.parse("gone:1"));
                        opened.get().tag("a:1", ImageName.parse("c:1"));
                    }
                    case 2 -> { // the next write is about to catch up: the store as a crash now would leave it
                        copyTree(root, crashed);
                        copied.countDown();
                    }
                    default -> { }
                }
            } catch (IOException | RuntimeException e) {
                failure.set(e);
                copied.countDown();
            }
        };
        try (ImageStore store = ImageStore.open(root, StoreOptions.defaults().withCrashHook(hook))) {
            opened.set(store);
            store.importFile(Files.write(dir.resolve("a.img"), StoreFiles.bytes("a", 4096)), Reference.parse("a:1"), n -> { });
            store.importFile(Files.write(dir.resolve("g.img"), StoreFiles.bytes("g", 4096)), Reference.parse("gone:1"), n -> { });
            store.syncIndex();
            List<String> goneBlobs = StoreFiles.blobsOfImage(root, "gone:1");
            armed.set(true);

            store.tag("a:1", ImageName.parse("b:1")); // wakes the background writer

            assertTrue(copied.await(30, TimeUnit.SECONDS), "the background writer wrote twice");
            assertNull(failure.get(), () -> "the commits in the hook failed: " + failure.get());
            String staleIndex = Files.readString(crashed.resolve("index.json"));
            assertTrue(staleIndex.contains("\"b:1\"") && staleIndex.contains("\"gone:1\"") && !staleIndex.contains("\"c:1\""),
                    "the first write wrote the snapshot it serialized, not the commits after it: " + staleIndex);
            for (String hex : goneBlobs) {
                assertTrue(Files.exists(StoreFiles.blob(crashed, hex)), "a blob the index on disk names is not deleted: " + hex);
            }
            assertTrue(Files.size(crashed.resolve(".vimgfs").resolve(Journal.FILE)) > Journal.START,
                    "the journal keeps the commits the index does not have");

            // the catch-up write: index.json has every commit, the journal is compacted, the untagged image is swept
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline && (!Files.readString(root.resolve("index.json")).contains("\"c:1\"")
                    || goneBlobs.stream().anyMatch(hex -> Files.exists(StoreFiles.blob(root, hex))))) {
                Thread.sleep(20);
            }
            String index = Files.readString(root.resolve("index.json"));
            assertTrue(index.contains("\"c:1\"") && !index.contains("\"gone:1\""), index);
            for (String hex : goneBlobs) {
                assertFalse(Files.exists(StoreFiles.blob(root, hex)), "once no index names it, its blob goes: " + hex);
            }
            assertEquals(Set.of("a:1", "b:1", "c:1"), StoreFiles.names(store));
        }
        assertEquals(Journal.START, Files.size(root.resolve(".vimgfs").resolve(Journal.FILE)), "closed: the journal is compacted");
        assertEquals(Set.of("a:1", "b:1", "c:1"), StoreFiles.assertConsistent(root).names().keySet().stream()
                .map(ImageName::toString).collect(java.util.stream.Collectors.toSet()));

        // a crash after the stale write: the journal's later commits are replayed over it
        assertEquals(Set.of("a:1", "b:1", "c:1"), StoreFiles.assertConsistent(crashed).names().keySet().stream()
                .map(ImageName::toString).collect(java.util.stream.Collectors.toSet()),
                "every acknowledged change survives a crash after a write of an overtaken snapshot");
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> paths = Files.walk(from)) {
            for (Path path : paths.toList()) {
                Path target = to.resolve(from.relativize(path).toString());
                if (Files.isDirectory(path)) {
                    Files.createDirectories(target);
                } else if (Files.isRegularFile(path)) {
                    Files.copy(path, target);
                }
            }
        }
    }

    @Test
    void aStoreOfMoreThanTenThousandImagesIsRewrittenOnlyOnceItsJournalReachesAQuarterOfTheIndex() throws Exception {
        Snapshot.IndexVersion index = new Snapshot.IndexVersion("index", 0, 62_000_000);
        Snapshot small = Snapshot.fromIndex(catalogOf(IndexWriter.PROMPT_IMAGES), index, 1, 1);
        Snapshot large = Snapshot.fromIndex(catalogOf(IndexWriter.PROMPT_IMAGES + 1), index, 1, 1);
        Catalog same = large.catalog();

        assertTrue(IndexWriter.due(small.committed(small.catalog(), Journal.Version.ABSENT, 600, 2, 2)),
                "up to 10,000 images, index.json follows within about a second");
        assertFalse(IndexWriter.due(large.committed(same, Journal.Version.ABSENT, 15_499_999, 2, 2)));
        assertTrue(IndexWriter.due(large.committed(same, Journal.Version.ABSENT, 15_500_000, 2, 2)));
    }

    private static Catalog catalogOf(int images) throws InvalidNameException {
        List<StoredImage> stored = new java.util.ArrayList<>();
        java.util.Map<ImageName, Digest> names = new java.util.HashMap<>();
        for (int i = 0; i < images; i++) {
            Digest digest = Digest.of(sha256("image " + i));
            stored.add(new StoredImage(digest, 512, ImageFormat.RAW, 512, 0, java.util.Optional.empty(),
                    java.time.Instant.EPOCH, digest, 300, digest));
            names.put(ImageName.parse("scale:" + i), digest);
        }
        return Catalog.of(stored, names, List.of());
    }

    private static byte[] sha256(String text) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256").digest(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
