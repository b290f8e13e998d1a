package io.vimgfs.store.format;

import static io.vimgfs.store.format.FormatProbe.corrupt;
import static io.vimgfs.store.format.FormatProbe.multiply;
import static io.vimgfs.store.format.FormatProbe.readAt;
import static io.vimgfs.store.format.FormatProbe.readFully;
import static io.vimgfs.store.format.FormatProbe.requireInFile;
import static io.vimgfs.store.format.FormatProbe.truncated;

import io.vimgfs.store.ImageFormat;
import io.vimgfs.store.ImageRejectedException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;
import java.util.function.LongConsumer;

/**
 * Reads one QCOW2 v2/v3 image's header, header extensions and tables (QEMU's
 * docs/interop/qcow2.txt) and checks that everything they point at lies inside the file, so a
 * truncated upload or a crafted image is refused before it is stored. Walks the active L1/L2
 * tables cluster by cluster with two reused buffers, reading each table once, so the work is
 * linear in the file however its tables point at each other; never reads guest data.
 */
final class Qcow2Image {

    private static final int V2_HEADER_LENGTH = 72;
    private static final int V3_MIN_HEADER_LENGTH = 104;
    private static final int MIN_CLUSTER_BITS = 9;
    private static final int MAX_CLUSTER_BITS = 21;
    private static final long MAX_VIRTUAL_SIZE = 1L << 62;
    /** QEMU's limits, so we refuse what QEMU could not open anyway (block/qcow2.h). */
    private static final long MAX_L1_BYTES = 32L << 20;
    private static final long MAX_REFCOUNT_TABLE_BYTES = 8L << 20;
    private static final int MAX_SNAPSHOTS = 65536;
    private static final int MAX_SNAPSHOT_EXTRA_DATA = 1024;
    private static final int MAX_BACKING_NAME = 1023;

    private static final long FEATURE_DIRTY = 1L;
    private static final long FEATURE_CORRUPT = 1L << 1;
    private static final long FEATURE_EXTERNAL_DATA = 1L << 2;
    private static final long FEATURE_COMPRESSION_TYPE = 1L << 3;
    private static final long FEATURE_EXTENDED_L2 = 1L << 4;
    private static final long KNOWN_FEATURES = FEATURE_DIRTY | FEATURE_CORRUPT | FEATURE_EXTERNAL_DATA
            | FEATURE_COMPRESSION_TYPE | FEATURE_EXTENDED_L2;
    private static final int COMPRESSION_ZSTD = 1;

    private static final int EXTENSION_END = 0;
    private static final int EXTENSION_BITMAPS = 0x23852875;
    private static final int EXTENSION_CRYPTO_HEADER = 0x0537be77;
    private static final int EXTENSION_EXTERNAL_DATA_FILE = 0x44415441;
    private static final int EXTENSION_BACKING_FORMAT = 0xe2792aca;
    /** QEMU keeps the backing format in a 16-byte string and refuses a longer extension. */
    private static final int MAX_BACKING_FORMAT = 15;

    /** Bits 9-55 of L1 and standard L2 entries: a cluster-aligned host offset. */
    private static final long TABLE_OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    /** Bits 9-63 of a refcount table entry. */
    private static final long REFCOUNT_OFFSET_MASK = ~0x1ffL;
    private static final long L2_COMPRESSED = 1L << 62;
    private static final int COMPRESSED_SECTOR = 512;

    /** The fixed header fields; v2 images get the v3 defaults. */
    private record Header(int version, long backingFileOffset, int backingFileSize, int clusterBits,
            long size, int cryptMethod, long l1Size, long l1TableOffset, long refcountTableOffset,
            long refcountTableClusters, long nbSnapshots, long snapshotsOffset,
            long incompatibleFeatures, int refcountOrder, int headerLength, int compressionType) {

        int clusterSize() {
            return 1 << clusterBits;
        }

        boolean extendedL2() {
            return (incompatibleFeatures & FEATURE_EXTENDED_L2) != 0;
        }

        int l2EntrySize() {
            return extendedL2() ? 16 : 8;
        }
    }

    private final FileChannel ch;
    private final long fileLength;
    private final Header header;
    private final int clusterSize;
    /** Reused for the L1, refcount and snapshot L1 tables, one cluster at a time. */
    private final ByteBuffer tableBuffer;
    /** Reused for each L2 table. */
    private final ByteBuffer l2Buffer;
    /** Told the offset of each L2 table as it is read, so tests can count the reads. */
    private final LongConsumer onL2Table;

    private Qcow2Image(FileChannel ch, long fileLength, Header header, LongConsumer onL2Table) {
        this.ch = ch;
        this.onL2Table = onL2Table;
        this.fileLength = fileLength;
        this.header = header;
        this.clusterSize = header.clusterSize();
        this.tableBuffer = ByteBuffer.allocate(clusterSize);
        this.l2Buffer = ByteBuffer.allocate(clusterSize);
    }

    /** Checks the QCOW2 image in {@code ch}, a file of {@code fileLength} bytes starting with the QCOW magic. */
    static ProbeResult probe(FileChannel ch, long fileLength) throws IOException {
        return probe(ch, fileLength, offset -> { });
    }

    /** {@link #probe(FileChannel, long)}, telling {@code onL2Table} each L2 table offset it reads. */
    static ProbeResult probe(FileChannel ch, long fileLength, LongConsumer onL2Table) throws IOException {
        Header header = parseHeader(readAt(ch, 0, V3_MIN_HEADER_LENGTH + 8), fileLength);
        checkFeatures(header);
        ByteBuffer firstCluster = readAt(ch, 0, (int) Math.min(header.clusterSize(), fileLength));
        Optional<String> backingFormat = checkExtensions(header, firstCluster, fileLength);
        Optional<String> backingFile = backingFile(header, firstCluster, fileLength);
        Qcow2Image image = new Qcow2Image(ch, fileLength, header, onL2Table);
        image.checkMapping();
        image.checkRefcounts();
        image.checkSnapshots();
        return new ProbeResult(ImageFormat.QCOW2, header.size(), header.clusterSize(), backingFile,
                backingFile.isPresent() ? backingFormat : Optional.empty());
    }

    // ---- header ----

    private static Header parseHeader(ByteBuffer buf, long fileLength) throws ImageRejectedException {
        if (buf.limit() < 8) {
            throw truncated("the qcow2 header is cut short: the file has only " + fileLength + " bytes");
        }
        int version = buf.getInt(4);
        if (version != 2 && version != 3) {
            throw corrupt("qcow2 version " + Integer.toUnsignedString(version)
                    + " is unsupported: only versions 2 and 3 can be stored");
        }
        int needed = version == 2 ? V2_HEADER_LENGTH : V3_MIN_HEADER_LENGTH;
        if (buf.limit() < needed) {
            throw truncated("the qcow2 header is cut short: the file has only " + fileLength + " bytes");
        }
        int clusterBits = buf.getInt(20);
        if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
            throw corrupt("qcow2 cluster_bits is " + Integer.toUnsignedString(clusterBits)
                    + ", outside the valid range 9 to 21: the header is damaged");
        }
        long size = buf.getLong(24);
        if (size < 0 || size > MAX_VIRTUAL_SIZE) {
            throw corrupt("the qcow2 virtual size (" + Long.toUnsignedString(size)
                    + " bytes) is impossibly large: the header is damaged");
        }
        int cryptMethod = buf.getInt(32);
        if (cryptMethod < 0 || cryptMethod > 2) {
            throw corrupt("qcow2 encryption method " + Integer.toUnsignedString(cryptMethod) + " is unknown");
        }
        long incompatible = 0;
        int refcountOrder = 4;
        int headerLength = V2_HEADER_LENGTH;
        int compressionType = 0;
        if (version == 3) {
            incompatible = buf.getLong(72);
            refcountOrder = buf.getInt(96);
            headerLength = buf.getInt(100);
            if (headerLength < V3_MIN_HEADER_LENGTH || headerLength % 8 != 0
                    || headerLength > 1 << clusterBits) {
                throw corrupt("the qcow2 header length " + Integer.toUnsignedString(headerLength)
                        + " is invalid: the header is damaged");
            }
            if (refcountOrder < 0 || refcountOrder > 6) {
                throw corrupt("qcow2 refcount_order " + Integer.toUnsignedString(refcountOrder)
                        + " is invalid (at most 6): the header is damaged");
            }
            if (headerLength > V3_MIN_HEADER_LENGTH && buf.limit() > V3_MIN_HEADER_LENGTH) {
                compressionType = Byte.toUnsignedInt(buf.get(V3_MIN_HEADER_LENGTH));
            }
        }
        return new Header(version, buf.getLong(8), buf.getInt(16), clusterBits, size, cryptMethod,
                Integer.toUnsignedLong(buf.getInt(36)), buf.getLong(40), buf.getLong(48),
                Integer.toUnsignedLong(buf.getInt(56)), Integer.toUnsignedLong(buf.getInt(60)),
                buf.getLong(64), incompatible, refcountOrder, headerLength, compressionType);
    }

    private static void checkFeatures(Header header) throws ImageRejectedException {
        long features = header.incompatibleFeatures();
        if ((features & FEATURE_CORRUPT) != 0) {
            throw corrupt("the qcow2 image is marked corrupt by QEMU (incompatible feature bit 1):"
                    + " repair it with 'qemu-img check -r all' before storing it");
        }
        if ((features & FEATURE_EXTERNAL_DATA) != 0) {
            throw externalDataFile("");
        }
        long unknown = features & ~KNOWN_FEATURES;
        if (unknown != 0) {
            throw corrupt("the qcow2 image uses unknown incompatible feature bit "
                    + Long.numberOfTrailingZeros(unknown) + ": it cannot be checked safely");
        }
        boolean typeBit = (features & FEATURE_COMPRESSION_TYPE) != 0;
        int type = header.compressionType();
        if (typeBit ? type != COMPRESSION_ZSTD : type != 0) {
            throw corrupt("qcow2 compression type " + type + (typeBit ? " is unknown" : " is set without"
                    + " the compression type feature bit") + ": only zlib and zstd are supported");
        }
        if (header.extendedL2() && header.clusterBits() < 14) {
            throw corrupt("the qcow2 image uses extended L2 entries with clusters smaller than"
                    + " 16 KiB, which the format forbids: the header is damaged");
        }
    }

    private static ImageRejectedException externalDataFile(String name) {
        return new ImageRejectedException(ImageRejectedException.Reason.EXTERNAL_DATA_FILE,
                "the qcow2 image keeps its data in an external file" + (name.isEmpty() ? "" : " (" + name + ")")
                        + ", which could expose any host file: store a self-contained image instead");
    }

    /**
     * Walks the header extensions, which QEMU keeps in the first cluster after the header, and
     * returns the backing format they name, if any.
     */
    private static Optional<String> checkExtensions(Header header, ByteBuffer firstCluster, long fileLength)
            throws ImageRejectedException {
        Optional<String> backingFormat = Optional.empty();
        long at = header.headerLength();
        while (at + 8 <= firstCluster.limit()) {
            int type = firstCluster.getInt((int) at);
            long length = Integer.toUnsignedLong(firstCluster.getInt((int) at + 4));
            if (type == EXTENSION_END) {
                return backingFormat;
            }
            long dataAt = at + 8;
            if (dataAt + length > header.clusterSize()) {
                throw corrupt("qcow2 header extension 0x" + Integer.toHexString(type)
                        + " runs past the first cluster: the header is damaged");
            }
            if (dataAt + length > firstCluster.limit()) {
                throw truncated("qcow2 header extension 0x" + Integer.toHexString(type)
                        + " runs past the end of the file (" + fileLength + " bytes): the image is truncated");
            }
            ByteBuffer data = firstCluster.duplicate().position((int) dataAt).limit((int) (dataAt + length)).slice();
            if (type == EXTENSION_BACKING_FORMAT) {
                backingFormat = backingFormat(data);
            }
            checkExtension(type, data, fileLength);
            at = dataAt + ((length + 7) & ~7L);
        }
        return backingFormat;
    }

    /**
     * The backing format as QEMU reads it: a C string, so it ends at the first NUL, and an empty
     * one means none (QEMU then probes the backing file). A later extension replaces an earlier.
     */
    private static Optional<String> backingFormat(ByteBuffer data) throws ImageRejectedException {
        if (data.remaining() > MAX_BACKING_FORMAT) {
            throw corrupt("the qcow2 backing format extension is " + data.remaining() + " bytes long, more than"
                    + " QEMU's limit of " + MAX_BACKING_FORMAT + ": the header is damaged");
        }
        byte[] name = new byte[data.remaining()];
        data.duplicate().get(name);
        int end = 0;
        while (end < name.length && name[end] != 0) {
            end++;
        }
        return end == 0 ? Optional.empty() : Optional.of(new String(name, 0, end, StandardCharsets.ISO_8859_1));
    }

    private static void checkExtension(int type, ByteBuffer data, long fileLength) throws ImageRejectedException {
        switch (type) {
            case EXTENSION_EXTERNAL_DATA_FILE -> {
                byte[] name = new byte[data.remaining()];
                data.get(name);
                throw externalDataFile(new String(name, StandardCharsets.UTF_8));
            }
            case EXTENSION_CRYPTO_HEADER -> {
                if (data.remaining() >= 16) {
                    requireInFile("qcow2 encryption header", data.getLong(0), data.getLong(8), fileLength);
                }
            }
            case EXTENSION_BITMAPS -> {
                if (data.remaining() >= 24) {
                    requireInFile("qcow2 bitmap directory", data.getLong(16), data.getLong(8), fileLength);
                }
            }
            default -> {
                // Backing format, feature names and unknown extensions point at nothing.
            }
        }
    }

    /** The backing file name as stored; judging it is the store's business, not ours. */
    private static Optional<String> backingFile(Header header, ByteBuffer firstCluster, long fileLength)
            throws ImageRejectedException {
        long offset = header.backingFileOffset();
        if (offset == 0) {
            return Optional.empty();
        }
        long size = Integer.toUnsignedLong(header.backingFileSize());
        if (size > MAX_BACKING_NAME) {
            throw corrupt("the qcow2 backing file name is " + size + " bytes long, more than the "
                    + MAX_BACKING_NAME + " allowed: the header is damaged");
        }
        if (offset < 0 || offset + size > header.clusterSize()) {
            throw corrupt("the qcow2 backing file name at offset 0x" + Long.toHexString(offset)
                    + " lies outside the first cluster: the header is damaged");
        }
        requireInFile("qcow2 backing file name", offset, size, fileLength);
        byte[] name = new byte[(int) size];
        firstCluster.get((int) offset, name);
        return name.length == 0 ? Optional.empty() : Optional.of(new String(name, StandardCharsets.UTF_8));
    }

    // ---- tables ----

    private void checkMapping() throws IOException {
        long l1Size = header.l1Size();
        long bytesPerL1Entry = (long) clusterSize * (clusterSize / header.l2EntrySize());
        long needed = (header.size() + bytesPerL1Entry - 1) / bytesPerL1Entry;
        if (l1Size * 8 > MAX_L1_BYTES) {
            throw corrupt("the qcow2 L1 table has " + l1Size + " entries, more than QEMU's limit of "
                    + MAX_L1_BYTES / 8 + ": the header is damaged");
        }
        if (l1Size < needed) {
            throw corrupt("the qcow2 L1 table has " + l1Size + " entries but the virtual size ("
                    + header.size() + " bytes) needs " + needed + ": the header is damaged");
        }
        if (l1Size == 0) {
            return;
        }
        checkTable("qcow2 L1 table", header.l1TableOffset(), l1Size * 8);
        // Many L1 entries may name one L2 table; each table is read once, in file order, so the
        // work is bounded by the file: the L1 table lies in it, and so does each distinct table.
        long[] l2Tables = new long[(int) l1Size];
        int[] count = {0};
        forEachEntry(header.l1TableOffset(), l1Size, (index, entry) -> {
            long l2Offset = entry & TABLE_OFFSET_MASK;
            if (l2Offset != 0) {
                checkCluster("qcow2 L2 table", l2Offset);
                l2Tables[count[0]++] = l2Offset;
            }
        });
        Arrays.sort(l2Tables, 0, count[0]);
        for (int i = 0; i < count[0]; i++) {
            if (i == 0 || l2Tables[i] != l2Tables[i - 1]) {
                checkL2Table(l2Tables[i]);
            }
        }
    }

    private void checkL2Table(long offset) throws IOException {
        onL2Table.accept(offset);
        l2Buffer.clear();
        readFully(ch, l2Buffer, offset);
        int stride = header.l2EntrySize();
        for (int at = 0; at < clusterSize; at += stride) {
            long entry = l2Buffer.getLong(at);
            if ((entry & L2_COMPRESSED) != 0) {
                checkCompressedCluster(entry);
                continue;
            }
            long dataOffset = entry & TABLE_OFFSET_MASK;
            if (dataOffset == 0) {
                continue;
            }
            checkAligned("qcow2 data cluster", dataOffset);
            long used = header.extendedL2() ? allocatedSubclusterBytes(l2Buffer.getLong(at + 8)) : clusterSize;
            requireInFile("qcow2 data cluster", dataOffset, used, fileLength);
        }
    }

    /**
     * How much of a host cluster an extended L2 entry reads: up to its last allocated subcluster.
     * Measured with qemu 7.2: a plain image's data cluster is always whole in the file (a 4 KiB
     * write into a fresh 64 KiB or 2 MiB cluster still grows the file to the cluster's end), but
     * with extended L2 entries a 4 KiB write allocates two 2 KiB subclusters and the file ends
     * there, so only the allocated subclusters can be required.
     */
    private long allocatedSubclusterBytes(long bitmap) {
        int allocated = (int) bitmap;
        int subclusters = 32 - Integer.numberOfLeadingZeros(allocated);
        return (long) subclusters * (clusterSize / 32);
    }

    /**
     * Compressed clusters use the descriptor layout where x = 62 - (cluster_bits - 8): a byte
     * offset and a count of further 512-byte sectors. QEMU does not pad the file after the last
     * compressed cluster (measured with qemu 7.2: a compressed 64 KiB write leaves the file 79
     * bytes past the cluster start while the descriptor names a whole sector), so the final sector
     * may end past EOF. What must be in the file is the first byte of that final sector, since
     * QEMU counts only sectors holding compressed bytes.
     */
    private void checkCompressedCluster(long entry) throws ImageRejectedException {
        int x = 62 - (header.clusterBits() - 8);
        long hostOffset = entry & ((1L << x) - 1);
        long sectors = ((entry >>> x) & ((1L << (62 - x)) - 1)) + 1;
        long end = (hostOffset & ~(COMPRESSED_SECTOR - 1L)) + sectors * COMPRESSED_SECTOR;
        long lastByteAtLeast = Math.max(hostOffset, end - COMPRESSED_SECTOR);
        if (lastByteAtLeast >= fileLength) {
            throw truncated("qcow2 compressed cluster at offset 0x" + Long.toHexString(hostOffset) + " ("
                    + (end - hostOffset) + " bytes) runs past the end of the file (" + fileLength
                    + " bytes): the image is truncated");
        }
    }

    private void checkRefcounts() throws IOException {
        long clusters = header.refcountTableClusters();
        if (clusters == 0) {
            throw corrupt("the qcow2 image has no refcount table: the header is damaged");
        }
        long bytes = multiply(clusters, clusterSize, "the qcow2 refcount table");
        if (bytes > MAX_REFCOUNT_TABLE_BYTES) {
            throw corrupt("the qcow2 refcount table is " + bytes + " bytes, more than QEMU's limit of "
                    + MAX_REFCOUNT_TABLE_BYTES + ": the header is damaged");
        }
        checkTable("qcow2 refcount table", header.refcountTableOffset(), bytes);
        forEachEntry(header.refcountTableOffset(), bytes / 8, (index, entry) -> {
            long block = entry & REFCOUNT_OFFSET_MASK;
            if (block != 0) {
                checkCluster("qcow2 refcount block", block);
            }
        });
    }

    private void checkSnapshots() throws IOException {
        long count = header.nbSnapshots();
        if (count == 0) {
            return;
        }
        if (count > MAX_SNAPSHOTS) {
            throw corrupt("the qcow2 image claims " + count + " snapshots, more than QEMU's limit of "
                    + MAX_SNAPSHOTS + ": the header is damaged");
        }
        long at = header.snapshotsOffset();
        checkAligned("qcow2 snapshot table", at);
        for (long i = 0; i < count; i++) {
            requireInFile("qcow2 snapshot table entry " + i, at, 40, fileLength);
            ByteBuffer entry = readAt(ch, at, 40);
            int extra = entry.getInt(36);
            if (extra < 0 || extra > MAX_SNAPSHOT_EXTRA_DATA) {
                throw corrupt("qcow2 snapshot " + i + " has " + Integer.toUnsignedString(extra)
                        + " bytes of extra data, more than QEMU allows: the snapshot table is damaged");
            }
            long length = 40L + extra + Short.toUnsignedInt(entry.getShort(12))
                    + Short.toUnsignedInt(entry.getShort(14));
            requireInFile("qcow2 snapshot table entry " + i, at, length, fileLength);
            long l1Size = Integer.toUnsignedLong(entry.getInt(8));
            if (l1Size * 8 > MAX_L1_BYTES) {
                throw corrupt("the L1 table of qcow2 snapshot " + i + " has " + l1Size
                        + " entries, more than QEMU's limit: the snapshot table is damaged");
            }
            if (l1Size > 0) {
                checkTable("qcow2 L1 table of snapshot " + i, entry.getLong(0), l1Size * 8);
            }
            at += (length + 7) & ~7L;
        }
    }

    // ---- helpers ----

    private interface EntryCheck {
        void check(long index, long entry) throws IOException;
    }

    /** Feeds each u64 of a contiguous table to {@code check}, reading one cluster at a time. */
    private void forEachEntry(long offset, long entries, EntryCheck check) throws IOException {
        long bytes = entries * 8;
        for (long done = 0; done < bytes; done += clusterSize) {
            int chunk = (int) Math.min(clusterSize, bytes - done);
            tableBuffer.clear().limit(chunk);
            readFully(ch, tableBuffer, offset + done);
            for (int at = 0; at < chunk; at += 8) {
                check.check((done + at) / 8, tableBuffer.getLong(at));
            }
        }
    }

    private void checkTable(String what, long offset, long bytes) throws ImageRejectedException {
        checkAligned(what, offset);
        requireInFile(what, offset, bytes, fileLength);
    }

    private void checkCluster(String what, long offset) throws ImageRejectedException {
        checkAligned(what, offset);
        requireInFile(what, offset, clusterSize, fileLength);
    }

    private void checkAligned(String what, long offset) throws ImageRejectedException {
        if ((offset & (clusterSize - 1)) != 0) {
            throw corrupt(what + " at offset 0x" + Long.toHexString(offset)
                    + " is not aligned to the cluster size (" + clusterSize + " bytes): the image is damaged");
        }
    }
}
