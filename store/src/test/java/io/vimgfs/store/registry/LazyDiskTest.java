package io.vimgfs.store.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.store.ChunkIndex;
import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.LazyPulls;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A lazily pulled disk against a registry on 127.0.0.1: a read fetches only the chunks it covers
 * (never a zero chunk), every byte handed out matches the chunk index, a flipped byte in the
 * registry's copy fails that read with the chunk and both digests and places nothing, a closed
 * disk resumes with what it had, and once filled it is placed and read from the blob.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LazyDiskTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private FakeRegistry registry;
    private TestImage image;
    private LazyPulls.Pull pull;
    private RegistryClient client;

    @BeforeEach
    void serve() throws IOException, io.vimgfs.store.InvalidNameException {
        registry = new FakeRegistry();
        image = TestImage.make(dir.resolve("source"), 6 * MIB + 4321, MIB); // chunks 2 and 3 are zeros
        image.serveFrom(registry);
        ChunkIndex index;
        try (ImageStore source = ImageStore.open(dir.resolve("source"));
             FileChannel layer = source.openImage(image.digest())) {
            index = ChunkIndex.compute(layer, image.layer().length, n -> { });
        }
        pull = new LazyPulls.Pull("docker://" + registry.host() + "/" + TestImage.REPOSITORY + ":1", false,
                ImageName.parse("vm:lazy"), image.digest(), image.layer().length, index.addTo(image.artifact().manifest()),
                image.artifact().config(), index.bytes());
        client = RegistryClient.forRegistry(RegistryReference.parse(pull.source()), RangedPullTest.OPTIONS,
                new CredentialLookup(Optional.empty(), Optional.empty(), java.util.Map.of(), dir));
    }

    @AfterEach
    void stop() {
        registry.close();
    }

    @Test
    void aReadFetchesOnlyTheChunksItCoversAndTheFillPlacesTheDisk() throws Exception {
        try (ImageStore store = ImageStore.open(dir.resolve("store"));
             LazyDisk disk = LazyDisk.open(store, pull, client, TestImage.REPOSITORY, pull.source())) {
            long probed = registry.bytesSent(image.digest().toString());
            assertEquals(2L * MIB, probed, "opening fetches the first two chunks to probe them, no more");
            assertArrayEquals(slice(5 * MIB + 100, 4096), read(disk, 5 * MIB + 100, 4096));
            assertEquals(probed + MIB + 4321, registry.bytesSent(image.digest().toString()),
                    "a read of chunk 5 fetches chunk 5 and the short chunk 6 after it");
            assertArrayEquals(new byte[MIB], read(disk, 2 * MIB, MIB), "a zero chunk comes from the index, not the registry");
            assertEquals(probed + MIB + 4321, registry.bytesSent(image.digest().toString()));
            assertTrue(store.image(image.digest()).isEmpty(), "nothing is placed before the disk is whole");

            disk.fill();

            assertTrue(disk.stats().placed());
            assertEquals(image.layer().length - 2L * MIB, registry.bytesSent(image.digest().toString()),
                    "every non-zero chunk came once");
            assertEquals(Optional.of(image.digest()), store.image(ImageName.parse("vm:lazy")).map(i -> i.digest()));
            assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
            assertArrayEquals(slice(MIB - 10, 2 * MIB), read(disk, MIB - 10, 2 * MIB), "reads go on from the blob");
            assertEquals(Optional.empty(), store.directory().lazyPulls().find(image.digest()), "the record is gone");
            assertTrue(store.fsck(false, n -> { }).clean());
        }
    }

    @Test
    void aFlippedByteInTheRegistryIsNeverServedAndNothingIsPlaced() throws Exception {
        registry.flipByteAt = 4L * MIB + 17;
        try (ImageStore store = ImageStore.open(dir.resolve("store"));
             LazyDisk disk = LazyDisk.open(store, pull, client, TestImage.REPOSITORY, pull.source())) {
            IOException refused = assertThrows(IOException.class, () -> read(disk, 4 * MIB, 4096));
            assertTrue(refused.getMessage().contains("chunk 4 (bytes 4194304-5242879)"), refused.getMessage());
            assertTrue(refused.getMessage().contains("not " + ChunkIndex.parse(pull.chunks(), pull.size()).digestOf(4)),
                    refused.getMessage());
            assertEquals(1, disk.stats().failures());
            assertArrayEquals(slice(MIB, 100), read(disk, MIB, 100), "other chunks are still served");
            assertThrows(IOException.class, disk::fill);
            assertTrue(store.image(image.digest()).isEmpty(), "nothing is placed");
            registry.flipByteAt = -1; // the registry is repaired: the same disk goes on
            assertArrayEquals(slice(4 * MIB, 4096), read(disk, 4 * MIB, 4096));
        }
    }

    @Test
    void aClosedDiskResumesWithTheChunksItHad() throws Exception {
        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            try (LazyDisk disk = LazyDisk.open(store, pull, client, TestImage.REPOSITORY, pull.source())) {
                read(disk, 4 * MIB, 10);
            }
            registry.resetCounts();
            try (LazyDisk disk = LazyDisk.open(store, pull, client, TestImage.REPOSITORY, pull.source())) {
                assertEquals(0, registry.bytesSent(image.digest().toString()), "the probed chunks were kept");
                assertArrayEquals(slice(4 * MIB, 10), read(disk, 4 * MIB, 10));
                assertEquals(0, registry.bytesSent(image.digest().toString()), "so was the chunk read before");
                disk.fill();
                assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
            }
        }
    }

    @Test
    void aDiskThatIsNotWhatItsManifestSaysIsRefusedBeforeAnythingIsServed() throws Exception {
        byte[] config = new String(image.artifact().config(), java.nio.charset.StandardCharsets.UTF_8)
                .replace("\"format\":\"raw\"", "\"format\":\"raw\"").replaceFirst("\"virtualSize\":[0-9]+", "\"virtualSize\":1")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
        LazyPulls.Pull lying = new LazyPulls.Pull(pull.source(), false, pull.name(), pull.layer(), pull.size(),
                pull.manifest(), config, pull.chunks());
        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            ImageRejectedException refused = assertThrows(ImageRejectedException.class,
                    () -> LazyDisk.open(store, lying, client, TestImage.REPOSITORY, pull.source()).close());
            assertTrue(refused.getMessage().contains("virtual size 1"), refused.getMessage());
            assertFalse(store.image(image.digest()).isPresent());
        }
    }

    private static byte[] read(LazyDisk disk, long offset, int length) throws IOException {
        ByteBuffer into = ByteBuffer.allocate(length);
        disk.read(into, offset);
        return into.array();
    }

    private byte[] slice(long offset, int length) {
        return Arrays.copyOfRange(image.layer(), (int) offset, (int) offset + length);
    }

    static Digest digestOf(byte[] bytes) {
        return Digest.of(ResumableBody.sha256(bytes));
    }
}
