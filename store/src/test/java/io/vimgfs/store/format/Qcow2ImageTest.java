package io.vimgfs.store.format;

import static io.vimgfs.store.format.FormatProbeTest.assertRejected;
import static io.vimgfs.store.format.FormatProbeTest.assertSameAsQemu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.ImageRejectedException.Reason;
import io.vimgfs.store.QemuImg;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class Qcow2ImageTest {

    /** Header field offsets (docs/interop/qcow2.txt). */
    private static final int VERSION = 4;
    private static final int BACKING_FILE_OFFSET = 8;
    private static final int CLUSTER_BITS = 20;
    private static final int SIZE = 24;
    private static final int L1_SIZE = 36;
    private static final int L1_TABLE_OFFSET = 40;
    private static final int REFCOUNT_TABLE_OFFSET = 48;
    private static final int SNAPSHOTS_OFFSET = 64;
    private static final int INCOMPATIBLE_FEATURES = 72;
    private static final long OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    private static final int CLUSTER = 64 * 1024;

    @TempDir
    Path dir;

    /** Makes an image in a directory; the shell line each one replays is in its name. */
    private interface ImageMaker {
        Path make(Path dir) throws IOException;
    }

    static Stream<Arguments> imagesMadeByQemu() {
        return Stream.of(
                Arguments.of("create -o compat=0.10 8M; write -P 0xab 0 1M", (ImageMaker) d ->
                        written(created(d, "8M", "compat=0.10"), "write -P 0xab 0 1M")),
                Arguments.of("create 8M; write -P 0xab 0 1M", (ImageMaker) d ->
                        written(created(d, "8M"), "write -P 0xab 0 1M")),
                Arguments.of("create 8G (sparse)", (ImageMaker) d -> created(d, "8G")),
                Arguments.of("create -o extended_l2=on 8M; write 1M and 4k", (ImageMaker) d -> written(
                        created(d, "8M", "extended_l2=on"), "write -P 0xab 0 1M", "write -P 1 3M 4k")),
                Arguments.of("create -o cluster_size=2M 16M; write 4k", (ImageMaker) d ->
                        written(created(d, "16M", "cluster_size=2M"), "write -P 1 0 4k")),
                Arguments.of("create -o cluster_size=512 4M; write 1M", (ImageMaker) d ->
                        written(created(d, "4M", "cluster_size=512"), "write -P 1 0 1M")),
                Arguments.of("convert -c -O qcow2", (ImageMaker) Qcow2ImageTest::compressed),
                Arguments.of("create -o compression_type=zstd; write -c", (ImageMaker) d ->
                        written(created(d, "1M", "compression_type=zstd"), "write -c -P 3 0 64k")),
                Arguments.of("create -o preallocation=metadata 64M", (ImageMaker) d ->
                        created(d, "64M", "preallocation=metadata")),
                Arguments.of("two snapshots", (ImageMaker) Qcow2ImageTest::withSnapshots),
                Arguments.of("bitmap --add", (ImageMaker) d -> {
                    Path image = created(d, "8M");
                    QemuImg.img("bitmap", "--add", image, "bm0");
                    return image;
                }));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("imagesMadeByQemu")
    void imagesMadeByQemuProbeAsQemuSeesThem(String how, ImageMaker maker) throws IOException {
        Path image = maker.make(dir);

        ProbeResult result = probe(image);

        assertSameAsQemu(image, result);
        assertEquals(QemuImg.info(image).get("cluster-size").asInt(), result.clusterSize());
        assertEquals(Optional.empty(), result.backingFile());
    }

    @Test
    void dataClusterCutInTheMiddleIsTruncated() throws IOException {
        Path image = written(created(dir, "8M"), "write -P 0xab 0 1M");
        QemuImg.truncate(image, Files.size(image) - CLUSTER / 2);

        assertRejected(image, Reason.TRUNCATED, "data cluster");
    }

    @Test
    void fileCutBeforeAnL2TableIsTruncated() throws IOException {
        // The L2 table for 4 GiB is allocated after the first megabyte of data, so it is near the end.
        Path image = written(created(dir, "8G"), "write -P 0xab 0 1M", "write -P 0xcd 4G 64k");
        long l2 = QemuImg.readLong(image, QemuImg.readLong(image, L1_TABLE_OFFSET) + 8 * 8) & OFFSET_MASK;
        assertNotEquals(0, l2);
        QemuImg.truncate(image, l2);

        ImageRejectedException e = assertRejected(image, Reason.TRUNCATED, "L2 table");
        assertTrue(e.getMessage().contains("0x" + Long.toHexString(l2)), e.getMessage());
    }

    @Test
    void dataClusterPointerPastTheEndIsTruncated() throws IOException {
        Path image = written(created(dir, "8M"), "write -P 0xab 0 64k");
        long l2 = QemuImg.readLong(image, QemuImg.readLong(image, L1_TABLE_OFFSET)) & OFFSET_MASK;
        QemuImg.writeLong(image, l2, (1L << 63) | (1L << 30));

        assertRejected(image, Reason.TRUNCATED, "data cluster at offset 0x40000000");
    }

    @Test
    void unalignedDataClusterIsCorrupt() throws IOException {
        Path image = written(created(dir, "8M"), "write -P 0xab 0 64k");
        long l2 = QemuImg.readLong(image, QemuImg.readLong(image, L1_TABLE_OFFSET)) & OFFSET_MASK;
        QemuImg.writeLong(image, l2, (1L << 63) | 0x50200);

        assertRejected(image, Reason.CORRUPT, "not aligned");
    }

    @Test
    void refcountTablePastTheEndIsTruncated() throws IOException {
        Path image = created(dir, "8M");
        QemuImg.writeLong(image, REFCOUNT_TABLE_OFFSET, 1L << 32);

        assertRejected(image, Reason.TRUNCATED, "refcount table");
    }

    @Test
    void lastCompressedClusterMayEndMidSectorButNotBeCutShort() throws IOException {
        // Measured: QEMU leaves the file ending right after the compressed bytes.
        Path image = written(created(dir, "1M"), "write -c -P 0x41 0 64k");
        long length = Files.size(image);
        assertNotEquals(0, length % 512, "qemu leaves a partial last sector");
        assertSameAsQemu(image, probe(image));

        QemuImg.truncate(image, length - length % CLUSTER);
        assertRejected(image, Reason.TRUNCATED, "compressed cluster");
    }

    @Test
    void extendedL2SubclusterWriteMayLeaveAPartialLastCluster() throws IOException {
        // Measured: with extended L2 a 4 KiB write allocates two 2 KiB subclusters and no more.
        Path image = written(created(dir, "8M", "extended_l2=on"), "write -P 1 3M 4k");
        assertNotEquals(0, Files.size(image) % CLUSTER);
        assertSameAsQemu(image, probe(image));

        QemuImg.truncate(image, Files.size(image) - 1024);
        assertRejected(image, Reason.TRUNCATED, "data cluster");
    }

    @Test
    void externalDataFileIsRefused() throws IOException {
        Path image = dir.resolve("x.qcow2");
        QemuImg.create(image, "qcow2", "1M", "data_file=" + dir.resolve("x.raw"));

        assertRejected(image, Reason.EXTERNAL_DATA_FILE, "external");
    }

    @Test
    void externalDataFileNameExtensionIsRefusedEvenWithoutTheFeatureBit() throws IOException {
        Path image = dir.resolve("x.qcow2");
        QemuImg.create(image, "qcow2", "1M", "data_file=" + dir.resolve("x.raw"));
        QemuImg.writeLong(image, INCOMPATIBLE_FEATURES, 0);

        assertRejected(image, Reason.EXTERNAL_DATA_FILE, "x.raw");
    }

    @Test
    void backingFileNameIsReportedAsStoredForTheStoreToJudge() throws IOException {
        Path image = dir.resolve("x.qcow2");
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "-u", image, "1M");

        ProbeResult result = probe(image);

        assertEquals(Optional.of("/etc/passwd"), result.backingFile());
        assertEquals(1 << 20, result.virtualSize());
    }

    @Test
    void backingFileNameOutsideTheFirstClusterIsCorrupt() throws IOException {
        Path image = dir.resolve("x.qcow2");
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "-u", image, "1M");
        QemuImg.writeLong(image, BACKING_FILE_OFFSET, CLUSTER - 4);

        assertRejected(image, Reason.CORRUPT, "backing file name");
    }

    @Test
    void corruptBitIsRefused() throws IOException {
        Path image = written(created(dir, "8M"), "write -P 1 0 64k");
        QemuImg.writeLong(image, INCOMPATIBLE_FEATURES, 1L << 1);

        assertRejected(image, Reason.CORRUPT, "marked corrupt");
    }

    @Test
    void dirtyBitIsAccepted() throws IOException {
        Path image = written(created(dir, "8M"), "write -P 1 0 64k");
        QemuImg.writeLong(image, INCOMPATIBLE_FEATURES, 1L);

        assertEquals(8L << 20, probe(image).virtualSize());
    }

    @Test
    void unknownIncompatibleFeatureIsRefused() throws IOException {
        Path image = created(dir, "8M");
        QemuImg.writeLong(image, INCOMPATIBLE_FEATURES, 1L << 9);

        assertRejected(image, Reason.CORRUPT, "unknown incompatible feature bit 9");
    }

    @Test
    void version1IsRefusedAsUnsupported() throws IOException {
        Path image = created(dir, "8M");
        QemuImg.writeInt(image, VERSION, 1);

        assertRejected(image, Reason.CORRUPT, "version 1 is unsupported");
    }

    @Test
    void clusterBitsOutOfRangeIsCorrupt() throws IOException {
        Path image = created(dir, "8M");
        QemuImg.writeInt(image, CLUSTER_BITS, 30);

        assertRejected(image, Reason.CORRUPT, "cluster_bits");
    }

    @Test
    void hugeL1SizeIsRefusedWithoutAllocatingIt() throws IOException {
        Path image = created(dir, "8M");
        QemuImg.writeInt(image, L1_SIZE, -1);

        assertRejected(image, Reason.CORRUPT, "L1 table");
    }

    @Test
    void l1TableLargerThanTheFileIsTruncated() throws IOException {
        Path image = created(dir, "8M");
        QemuImg.writeInt(image, L1_SIZE, 1 << 20);

        assertRejected(image, Reason.TRUNCATED, "L1 table");
    }

    @Test
    void virtualSizeBeyondTwoToThe62IsCorrupt() throws IOException {
        Path image = created(dir, "8M");
        QemuImg.writeLong(image, SIZE, Long.MAX_VALUE);

        assertRejected(image, Reason.CORRUPT, "virtual size");
    }

    @Test
    void snapshotL1TablePastTheEndIsTruncated() throws IOException {
        Path image = withSnapshots(dir);
        long snapshots = QemuImg.readLong(image, SNAPSHOTS_OFFSET);
        QemuImg.writeLong(image, snapshots, 1L << 40);

        assertRejected(image, Reason.TRUNCATED, "snapshot");
    }

    @Test
    void fullGigabyteImageIsCheckedWellUnderASecond() throws IOException {
        // preallocation=metadata fills every L2 entry, as a fully written image would.
        Path image = created(dir, "1G", "preallocation=metadata");
        Path sparse = created(dir.resolve("sparse"), "10G");
        probe(image);

        long start = System.nanoTime();
        ProbeResult full = probe(image);
        ProbeResult empty = probe(sparse);
        long millis = (System.nanoTime() - start) / 1_000_000;

        assertEquals(1L << 30, full.virtualSize());
        assertEquals(10L << 30, empty.virtualSize());
        // about 10 ms alone; the bound allows for a loaded 2-core machine and still catches reading
        // the image's data (or every L2 table on each lookup) instead of its metadata once
        assertTrue(millis < 1500, "probing took " + millis + " ms");
    }

    @Test
    void backingFormatIsReportedAsStoredForTheStoreToJudge() throws IOException {
        Path image = dir.resolve("overlay.qcow2");
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", "a".repeat(64), "-F", "vmdk", "-u", image, "8M");

        ProbeResult result = probe(image);

        assertEquals(Optional.of("a".repeat(64)), result.backingFile());
        assertEquals(Optional.of("vmdk"), result.backingFormat());
    }

    @Test
    void l1EntriesSharingOneL2TableReadItOnce() throws IOException {
        // 8 PiB of 2 MiB clusters: 16,384 L1 entries, each naming an L2 table of 262,144 entries.
        int cluster = 2 << 20;
        Path image = written(created(dir, "8P", "cluster_size=2M"), "write -P 1 0 64k");
        long l1 = QemuImg.readLong(image, L1_TABLE_OFFSET);
        long l1Entry = QemuImg.readLong(image, l1);
        long l2 = l1Entry & OFFSET_MASK;
        long l2Entry = QemuImg.readLong(image, l2);
        java.nio.ByteBuffer table = java.nio.ByteBuffer.allocate(cluster);
        for (int i = 0; i < cluster / 8; i++) {
            table.putLong(i * 8, l2Entry);
        }
        java.nio.ByteBuffer l1Table = java.nio.ByteBuffer.allocate(16_384 * 8);
        for (int i = 0; i < 16_384; i++) {
            l1Table.putLong(i * 8, l1Entry);
        }
        try (FileChannel ch = FileChannel.open(image, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(table, l2);
            ch.write(l1Table, l1);
        }
        java.util.List<Long> l2Reads = new java.util.ArrayList<>();

        long start = System.nanoTime();
        ProbeResult result;
        try (FileChannel ch = FileChannel.open(image)) {
            result = Qcow2Image.probe(ch, ch.size(), l2Reads::add);
        }
        long millis = (System.nanoTime() - start) / 1_000_000;

        assertEquals(8L << 50, result.virtualSize());
        assertEquals(java.util.List.of(l2), l2Reads, "the shared L2 table is read once, not 16,384 times");
        assertTrue(millis < 5_000, "probing took " + millis + " ms");
    }

        private static ProbeResult probe(Path image) throws IOException {
        try (FileChannel ch = FileChannel.open(image)) {
            return FormatProbe.probe(ch);
        }
    }

    private static Path created(Path dir, String size, String... options) throws IOException {
        Files.createDirectories(dir);
        Path image = dir.resolve("disk.qcow2");
        QemuImg.create(image, "qcow2", size, options);
        return image;
    }

    private static Path written(Path image, String... commands) {
        QemuImg.io(image, commands);
        return image;
    }

    private static Path compressed(Path dir) throws IOException {
        Path raw = dir.resolve("text.raw");
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 200_000; i++) {
            text.append("line ").append(i).append('\n');
        }
        Files.writeString(raw, text);
        Path image = dir.resolve("disk.qcow2");
        QemuImg.convert(raw, image, "qcow2", "-c");
        return image;
    }

    private static Path withSnapshots(Path dir) throws IOException {
        Path image = written(created(dir, "8M"), "write -P 0xab 0 1M");
        QemuImg.img("snapshot", "-c", "one", image);
        QemuImg.io(image, "write -P 0xcd 0 64k");
        QemuImg.img("snapshot", "-c", "two", image);
        return image;
    }
}
