package io.vimgfs.store.format;

import static io.vimgfs.store.ImageRejectedException.Reason.CORRUPT;
import static io.vimgfs.store.ImageRejectedException.Reason.EMPTY;
import static io.vimgfs.store.ImageRejectedException.Reason.FORBIDDEN_BACKING;
import static io.vimgfs.store.ImageRejectedException.Reason.TRUNCATED;

import io.vimgfs.store.ImageFormat;
import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.InvalidNameException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Recognises a disk image by its magic bytes and checks that the structures its header names lie
 * inside the file and refer to no other file (SPEC §6). QCOW2 is handed to {@link Qcow2Image}.
 * Reads only with positional reads, so the channel's position is left alone.
 */
public final class FormatProbe {

    private static final int SECTOR = 512;
    private static final byte[] QCOW_MAGIC = {'Q', 'F', 'I', (byte) 0xfb};
    private static final byte[] VMDK_SPARSE_MAGIC = ascii("KDMV");
    private static final byte[] VMDK_COWD_MAGIC = ascii("COWD");
    private static final byte[] VMDK_DESCRIPTOR_MAGIC = ascii("# Disk DescriptorFile");
    private static final byte[] VHDX_MAGIC = ascii("vhdxfile");
    private static final byte[] ISO_MAGIC = ascii("CD001");
    private static final byte[] QED_MAGIC = {'Q', 'E', 'D', 0};
    private static final byte[] VPC_MAGIC = ascii("conectix");
    private static final byte[] PARALLELS_MAGIC = ascii("WithoutFreeSpace");
    private static final byte[] PARALLELS_MAGIC2 = ascii("WithouFreSpacExt");
    private static final byte[] BOCHS_MAGIC = ascii("Bochs Virtual HD Image");
    private static final byte[] CLOOP_MAGIC =
            ascii("#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n");
    private static final byte[] LUKS_MAGIC = {'L', 'U', 'K', 'S', (byte) 0xba, (byte) 0xbe};
    private static final int VDI_SIGNATURE_OFFSET = 0x40;
    private static final int VDI_SIGNATURE = 0xbeda107f;
    private static final int ISO_MAGIC_OFFSET = 0x8001;

    /** QEMU reads this much of a file to guess its format; a text VMDK descriptor is found in it. */
    private static final int QEMU_PROBE_BYTES = 2048;
    private static final long VMDK_GD_AT_END = -1L;
    /** QEMU scans this much of a sparse VMDK, at 0x200, for the parent of a differencing disk. */
    private static final int VMDK_PARENT_SCAN_BYTES = 20 * SECTOR;
    private static final int VMDK_MAX_DESCRIPTOR_BYTES = 1 << 20;
    /** QEMU's limit on the grain size, which also keeps grain size times table size from overflowing. */
    private static final long VMDK_MAX_GRAIN_SECTORS = 0x200000;
    private static final Pattern VMDK_PARENT_CID =
            Pattern.compile("^\\s*parentCID\\s*=\\s*\"?([^\"\\s]*)", Pattern.MULTILINE);

    private static final int VHDX_REGION_TABLE_OFFSET = 192 * 1024;
    private static final int VHDX_MAX_REGION_ENTRIES = 2047;
    private static final byte[] VHDX_METADATA_REGION = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E");
    private static final byte[] VHDX_BAT_REGION = guid("2DC27766-F623-4200-9D64-115E9BFD4A08");
    private static final byte[] VHDX_VIRTUAL_DISK_SIZE = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
    private static final byte[] VHDX_PARENT_LOCATOR = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");

    private FormatProbe() {}

    /**
     * Recognises the image in {@code ch}, or throws {@link ImageRejectedException} saying why not.
     *
     * <p>QEMU guesses a format by running every driver's probe on the first 2048 bytes and taking
     * the highest score (block.c {@code bdrv_probe_all}; raw scores 1, so it wins only when no
     * other probe matches). A stored image must be safe whichever of them QEMU picks, so every
     * driver whose probe matches is checked, and a file that more than one would take is refused:
     * which one QEMU picks then depends on the order its build registered them.
     */
    public static ProbeResult probe(FileChannel ch) throws IOException {
        long length = ch.size();
        if (length == 0) {
            throw new ImageRejectedException(EMPTY, "the file is empty: there is no image to store");
        }
        ByteBuffer head = readAt(ch, 0, QEMU_PROBE_BYTES);
        List<QemuDriver> drivers = QemuDriver.matching(head);
        if (drivers.isEmpty()) {
            // Only raw's probe matches. ISO is our name for raw with a CD volume descriptor.
            boolean iso = startsWith(readAt(ch, ISO_MAGIC_OFFSET, ISO_MAGIC.length), 0, ISO_MAGIC);
            return ProbeResult.of(iso ? ImageFormat.ISO : ImageFormat.RAW, length);
        }
        ProbeResult result = null;
        ImageRejectedException refused = null;
        for (QemuDriver driver : drivers) {
            try {
                result = probeAs(driver, ch, head, length);
            } catch (ImageRejectedException e) {
                if (refused == null || e.reason().unsafe() && !refused.reason().unsafe()) {
                    refused = e;
                }
            }
        }
        if (refused != null && (refused.reason().unsafe() || drivers.size() == 1)) {
            throw refused;
        }
        if (drivers.size() > 1) {
            throw corrupt("the file carries the signatures of several formats ("
                    + drivers.stream().map(QemuDriver::toString).collect(Collectors.joining(", ")) + "): QEMU could open it as any of them, so it cannot be checked as one");
        }
        return result;
    }

    private static ProbeResult probeAs(QemuDriver driver, FileChannel ch, ByteBuffer head, long length)
            throws IOException {
        return switch (driver) {
            case QCOW -> head.limit() >= 8 && head.getInt(4) == 1 ? refuseQcowVersion1(head) : Qcow2Image.probe(ch, length);
            case VMDK -> probeSparseVmdk(ch, head, length);
            case VMDK_DESCRIPTOR -> throw new ImageRejectedException(FORBIDDEN_BACKING,
                    "this is a VMDK descriptor file: its data lives in other files it names, which"
                            + " cannot be stored; convert it to a single-file image first");
            case VHDX -> probeVhdx(ch, length);
            case VDI -> probeVdi(ch, length);
            case QED -> {
                checkQedHasNoBacking(head);
                throw unsupported(driver);
            }
            case VPC, PARALLELS, BOCHS, CLOOP, LUKS -> throw unsupported(driver);
        };
    }

    /**
     * The QEMU 7.2 drivers whose probe can score above raw's, each with its probe's rule made no
     * narrower (magic bytes only, where QEMU also checks a version). {@code dmg} is not here: it
     * probes by the file name ending in {@code .dmg}, not by content, and reads nothing but the
     * file itself, so a stored image opened as dmg is broken but safe.
     */
    private enum QemuDriver {
        /** qcow2 (version 2 and up) and qcow (version 1, which has backing files too) share the magic. */
        QCOW("qcow2/qcow"),
        VMDK("vmdk"),
        VMDK_DESCRIPTOR("vmdk descriptor"),
        VHDX("vhdx"),
        VDI("vdi"),
        QED("qed"),
        VPC("vpc"),
        PARALLELS("parallels"),
        BOCHS("bochs"),
        CLOOP("cloop"),
        LUKS("luks");

        private final String label;

        QemuDriver(String label) {
            this.label = label;
        }

        static List<QemuDriver> matching(ByteBuffer head) {
            // QEMU probes a full 2048-byte buffer, read with zeros past the end of a shorter file.
            ByteBuffer padded = ByteBuffer.allocate(QEMU_PROBE_BYTES).put(head.duplicate().position(0)).clear();
            List<QemuDriver> out = new ArrayList<>();
            for (QemuDriver driver : values()) {
                if (driver.probes(padded)) {
                    out.add(driver);
                }
            }
            return out;
        }

        private boolean probes(ByteBuffer buf) {
            return switch (this) {
                case QCOW -> startsWith(buf, 0, QCOW_MAGIC);
                case VMDK -> startsWith(buf, 0, VMDK_SPARSE_MAGIC) || startsWith(buf, 0, VMDK_COWD_MAGIC);
                case VMDK_DESCRIPTOR -> startsWith(buf, 0, VMDK_DESCRIPTOR_MAGIC)
                        || VmdkDescriptor.probesAsDescriptor(buf);
                case VHDX -> startsWith(buf, 0, VHDX_MAGIC);
                case VDI -> buf.duplicate().order(ByteOrder.LITTLE_ENDIAN).getInt(VDI_SIGNATURE_OFFSET) == VDI_SIGNATURE;
                case QED -> startsWith(buf, 0, QED_MAGIC);
                case VPC -> startsWith(buf, 0, VPC_MAGIC);
                case PARALLELS -> startsWith(buf, 0, PARALLELS_MAGIC) || startsWith(buf, 0, PARALLELS_MAGIC2);
                case BOCHS -> startsWith(buf, 0, BOCHS_MAGIC);
                case CLOOP -> startsWith(buf, 0, CLOOP_MAGIC);
                case LUKS -> startsWith(buf, 0, LUKS_MAGIC);
            };
        }

        @Override
        public String toString() {
            return label;
        }
    }

    private static ImageRejectedException unsupported(QemuDriver driver) {
        return corrupt("this is a " + driver + " image, a format vimgfs does not store (QEMU would open it as "
                + driver + ", not as raw): convert it with 'qemu-img convert -O qcow2' first");
    }

    /** qcow version 1 (block/qcow.c): not stored, and refused as unsafe when it names a backing file. */
    private static ProbeResult refuseQcowVersion1(ByteBuffer head) throws ImageRejectedException {
        if (head.limit() >= 16 && head.getLong(8) != 0) {
            throw new ImageRejectedException(FORBIDDEN_BACKING,
                    "this is a qcow (version 1) image with a backing file, which is outside the store");
        }
        throw corrupt("qcow version 1 is unsupported: only qcow2 versions 2 and 3 can be stored;"
                + " convert it with 'qemu-img convert -O qcow2' first");
    }

    // ---- VMDK ----

    private static ProbeResult probeSparseVmdk(FileChannel ch, ByteBuffer head, long length)
            throws IOException {
        if (head.limit() < SECTOR) {
            throw truncated("the vmdk header is cut short: the file has only " + length + " bytes");
        }
        ByteBuffer header = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (startsWith(head, 0, VMDK_COWD_MAGIC)) {
            // The old ESX "COWD" sparse format: capacity in sectors is a u32 at offset 12.
            long capacity = Integer.toUnsignedLong(header.getInt(12));
            checkVmdkParent(ch, SECTOR, VMDK_PARENT_SCAN_BYTES);
            return ProbeResult.of(ImageFormat.VMDK, capacity * SECTOR);
        }
        long capacity = header.getLong(12);
        if (capacity < 0 || capacity > (1L << 62) / SECTOR) {
            throw corrupt("the vmdk capacity field (" + Long.toUnsignedString(capacity)
                    + " sectors) is impossibly large: the header is damaged");
        }
        if (capacity == 0 && header.getLong(28) != 0) {
            checkEmbeddedDescriptorFile(ch, header.getLong(28), length);
        }
        if (header.getLong(56) == VMDK_GD_AT_END) {
            // A stream-optimized VMDK written front to back keeps its real header in a footer,
            // followed by the end-of-stream marker sector.
            header = readAt(ch, Math.max(0, length - 2L * SECTOR), SECTOR).order(ByteOrder.LITTLE_ENDIAN);
            if (length < 3L * SECTOR || !startsWith(header, 0, VMDK_SPARSE_MAGIC)
                    || header.getLong(56) == VMDK_GD_AT_END) {
                throw truncated("the stream-optimized vmdk has no footer with its grain directory:"
                        + " the image is truncated");
            }
        }
        long descriptorOffset = sectorsToBytes(header.getLong(28), "descriptor offset");
        long descriptorSize = sectorsToBytes(header.getLong(36), "descriptor size");
        if (descriptorOffset != 0) {
            requireInFile("vmdk embedded descriptor", descriptorOffset, descriptorSize, length);
            checkVmdkParent(ch, descriptorOffset, (int) Math.min(descriptorSize, VMDK_MAX_DESCRIPTOR_BYTES));
        }
        checkVmdkParent(ch, SECTOR, VMDK_PARENT_SCAN_BYTES);
        long directorySize = vmdkGrainDirectorySize(header, capacity);
        long redundantDirectory = header.getLong(48);
        if ((header.getInt(8) & 2) != 0 && redundantDirectory != 0) {
            requireInFile("vmdk redundant grain directory",
                    sectorsToBytes(redundantDirectory, "redundant grain directory offset"), directorySize, length);
        }
        requireInFile("vmdk grain directory",
                sectorsToBytes(header.getLong(56), "grain directory offset"), directorySize, length);
        return ProbeResult.of(ImageFormat.VMDK, capacity * SECTOR);
    }

    /**
     * QEMU's {@code vmdk_open_vmdk4} opens a header of capacity 0 with a descriptor offset as a
     * descriptor file: it reads up to 1 MiB of text there (to the first NUL) and opens every
     * extent it names, which can be any host file. The primary header decides this, before any
     * stream-optimized footer is read. An offset past the end reads as zeros: an empty descriptor.
     */
    private static void checkEmbeddedDescriptorFile(FileChannel ch, long offsetSectors, long length)
            throws IOException {
        long at = offsetSectors << 9;
        if (at < 0 || at >= length) {
            return;
        }
        byte[] text = bytes(readAt(ch, at, (int) Math.min(length, VMDK_MAX_DESCRIPTOR_BYTES - 1)));
        int nul = 0;
        while (nul < text.length && text[nul] != 0) {
            nul++;
        }
        Optional<String> extent = VmdkDescriptor.firstExtent(Arrays.copyOf(text, nul));
        if (extent.isPresent()) {
            throw new ImageRejectedException(FORBIDDEN_BACKING, "this vmdk has capacity 0 and an embedded"
                    + " descriptor, which QEMU opens as a descriptor file; its extent '"
                    + InvalidNameException.printable(extent.get()) + "' is a file outside the store");
        }
    }

    private static long vmdkGrainDirectorySize(ByteBuffer header, long capacity)
            throws ImageRejectedException {
        long grainSize = header.getLong(20);
        long tableEntries = Integer.toUnsignedLong(header.getInt(44));
        if (grainSize <= 0 || tableEntries == 0 || grainSize > VMDK_MAX_GRAIN_SECTORS) {
            throw corrupt("the vmdk grain size (" + grainSize + " sectors) or grain table size ("
                    + tableEntries + " entries) is invalid: the header is damaged");
        }
        long sectorsPerTable = grainSize * tableEntries;
        return ceilDiv(capacity, sectorsPerTable) * 4;
    }

    /** Refuses a differencing VMDK, whose descriptor names a parent file outside the store. */
    private static void checkVmdkParent(FileChannel ch, long offset, int size) throws IOException {
        String descriptor = new String(bytes(readAt(ch, offset, size)), StandardCharsets.ISO_8859_1);
        if (descriptor.contains("parentFileNameHint")) {
            throw new ImageRejectedException(FORBIDDEN_BACKING,
                    "this vmdk is a differencing disk whose parent (parentFileNameHint) is a file"
                            + " outside the store");
        }
        Matcher cid = VMDK_PARENT_CID.matcher(descriptor);
        if (cid.find() && !cid.group(1).equalsIgnoreCase("ffffffff")) {
            throw new ImageRejectedException(FORBIDDEN_BACKING,
                    "this vmdk is a differencing disk (parentCID=" + cid.group(1)
                            + "): its parent is a file outside the store");
        }
    }

    /** QED is not a format we store, but QEMU would follow its backing file if it guessed the format. */
    private static void checkQedHasNoBacking(ByteBuffer head) throws ImageRejectedException {
        if (head.limit() >= 24 && (head.duplicate().order(ByteOrder.LITTLE_ENDIAN).getLong(16) & 1) != 0) {
            throw new ImageRejectedException(FORBIDDEN_BACKING,
                    "this is a QED image with a backing file outside the store");
        }
    }

    // ---- VHDX ----

    private static ProbeResult probeVhdx(FileChannel ch, long length) throws IOException {
        requireInFile("vhdx region table", VHDX_REGION_TABLE_OFFSET, 16, length);
        ByteBuffer table = readAt(ch, VHDX_REGION_TABLE_OFFSET, 64 * 1024).order(ByteOrder.LITTLE_ENDIAN);
        if (!startsWith(table, 0, ascii("regi"))) {
            throw corrupt("the vhdx region table at offset 0x30000 has no 'regi' signature: the image is damaged");
        }
        int entries = table.getInt(8);
        if (entries < 0 || entries > VHDX_MAX_REGION_ENTRIES || 16 + entries * 32 > table.limit()) {
            throw corrupt("the vhdx region table claims " + Integer.toUnsignedString(entries)
                    + " entries: the image is damaged");
        }
        long metadataOffset = -1;
        long metadataLength = 0;
        for (int i = 0; i < entries; i++) {
            int at = 16 + i * 32;
            long offset = table.getLong(at + 16);
            long size = Integer.toUnsignedLong(table.getInt(at + 24));
            if (hasGuid(table, at, VHDX_METADATA_REGION)) {
                requireInFile("vhdx metadata region", offset, size, length);
                metadataOffset = offset;
                metadataLength = size;
            } else if (hasGuid(table, at, VHDX_BAT_REGION)) {
                requireInFile("vhdx block allocation table", offset, size, length);
            }
        }
        if (metadataOffset < 0) {
            throw corrupt("the vhdx region table has no metadata region: the image is damaged");
        }
        return ProbeResult.of(ImageFormat.VHDX, vhdxVirtualSize(ch, metadataOffset, metadataLength, length));
    }

    private static long vhdxVirtualSize(FileChannel ch, long regionOffset, long regionLength, long length)
            throws IOException {
        if (regionLength < 32) {
            throw corrupt("the vhdx metadata region is only " + regionLength + " bytes: the image is damaged");
        }
        ByteBuffer table = readAt(ch, regionOffset, (int) Math.min(regionLength, 64 * 1024))
                .order(ByteOrder.LITTLE_ENDIAN);
        if (!startsWith(table, 0, ascii("metadata"))) {
            throw corrupt("the vhdx metadata table at offset 0x" + Long.toHexString(regionOffset)
                    + " has no 'metadata' signature: the image is damaged");
        }
        int entries = Short.toUnsignedInt(table.getShort(10));
        if (32 + entries * 32 > table.limit()) {
            throw corrupt("the vhdx metadata table claims " + entries + " entries: the image is damaged");
        }
        long virtualSize = -1;
        for (int i = 0; i < entries; i++) {
            int at = 32 + i * 32;
            if (hasGuid(table, at, VHDX_PARENT_LOCATOR)) {
                throw new ImageRejectedException(FORBIDDEN_BACKING,
                        "this vhdx is a differencing disk whose parent is a file outside the store");
            }
            long itemOffset = Integer.toUnsignedLong(table.getInt(at + 16));
            long itemLength = Integer.toUnsignedLong(table.getInt(at + 20));
            if (itemOffset + itemLength > regionLength) {
                throw corrupt("a vhdx metadata item lies outside the metadata region: the image is damaged");
            }
            requireInFile("vhdx metadata item", regionOffset + itemOffset, itemLength, length);
            if (hasGuid(table, at, VHDX_VIRTUAL_DISK_SIZE)) {
                if (itemLength < 8) {
                    throw corrupt("the vhdx virtual disk size item is too short: the image is damaged");
                }
                virtualSize = readAt(ch, regionOffset + itemOffset, 8).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            }
        }
        if (virtualSize < 0) {
            throw corrupt("the vhdx metadata has no valid virtual disk size: the image is damaged");
        }
        return virtualSize;
    }

    private static boolean hasGuid(ByteBuffer table, int at, byte[] guid) {
        return startsWith(table, at, guid);
    }

    /** A GUID as Windows stores it: the first three fields little-endian, the last eight bytes as written. */
    static byte[] guid(String text) {
        UUID uuid = UUID.fromString(text);
        ByteBuffer big = ByteBuffer.allocate(16).putLong(uuid.getMostSignificantBits())
                .putLong(uuid.getLeastSignificantBits());
        byte[] b = big.array();
        return new byte[] {b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6],
                b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]};
    }

    // ---- VDI (layout of QEMU's block/vdi.c VdiHeader) ----

    private static ProbeResult probeVdi(FileChannel ch, long length) throws IOException {
        ByteBuffer header = readAt(ch, 0, SECTOR).order(ByteOrder.LITTLE_ENDIAN);
        if (header.limit() < SECTOR) {
            throw truncated("the vdi header is cut short: the file has only " + length + " bytes");
        }
        long bmapOffset = Integer.toUnsignedLong(header.getInt(0x154));
        long dataOffset = Integer.toUnsignedLong(header.getInt(0x158));
        long diskSize = header.getLong(0x170);
        long blockSize = Integer.toUnsignedLong(header.getInt(0x178));
        long blocksInImage = Integer.toUnsignedLong(header.getInt(0x180));
        long blocksAllocated = Integer.toUnsignedLong(header.getInt(0x184));
        if (diskSize < 0 || diskSize > (1L << 62)) {
            throw corrupt("the vdi disk size field is impossibly large: the header is damaged");
        }
        if (!isZero(header, 0x1a8, 32)) {
            throw new ImageRejectedException(FORBIDDEN_BACKING,
                    "this vdi is a differencing disk linked to a parent image outside the store");
        }
        requireInFile("vdi block map", bmapOffset, blocksInImage * 4, length);
        requireInFile("vdi data area", dataOffset, multiply(blocksAllocated, blockSize, "vdi data area"), length);
        return ProbeResult.of(ImageFormat.VDI, diskSize);
    }

    // ---- shared helpers, also used by Qcow2Image ----

    /**
     * Reads up to {@code size} bytes at {@code position}; the buffer's limit is the count read,
     * short only at the end of the file.
     */
    static ByteBuffer readAt(FileChannel ch, long position, int size) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(size);
        readFully(ch, buf, position);
        return buf.flip();
    }

    /** Fills {@code buf} from {@code position} until it is full or the file ends. */
    static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        long at = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, at);
            if (n < 0) {
                return;
            }
            at += n;
        }
    }

    /** Throws TRUNCATED unless {@code size} bytes at {@code offset} lie inside a file of {@code length} bytes. */
    static void requireInFile(String what, long offset, long size, long length) throws ImageRejectedException {
        long end;
        try {
            if (size < 0) {
                throw new ArithmeticException();
            }
            end = Math.addExact(offset, size);
        } catch (ArithmeticException e) {
            throw corrupt(what + " at offset 0x" + Long.toHexString(offset) + " has an impossible size ("
                    + Long.toUnsignedString(size) + " bytes): the image is damaged");
        }
        if (offset < 0 || offset >= length && size > 0 || offset > length) {
            throw truncated(what + " at offset 0x" + Long.toHexString(offset)
                    + " lies past the end of the file (" + length + " bytes): the image is truncated");
        }
        if (end > length) {
            throw truncated(what + " at offset 0x" + Long.toHexString(offset) + " (" + size
                    + " bytes) runs past the end of the file (" + length + " bytes): the image is truncated");
        }
    }

    static ImageRejectedException truncated(String message) {
        return new ImageRejectedException(TRUNCATED, message);
    }

    static ImageRejectedException corrupt(String message) {
        return new ImageRejectedException(CORRUPT, message);
    }

    static boolean startsWith(ByteBuffer buf, int at, byte[] magic) {
        if (buf.limit() < at + magic.length) {
            return false;
        }
        for (int i = 0; i < magic.length; i++) {
            if (buf.get(at + i) != magic[i]) {
                return false;
            }
        }
        return true;
    }

    private static long sectorsToBytes(long sectors, String field) throws ImageRejectedException {
        return multiply(sectors, SECTOR, "the vmdk " + field);
    }

    /** {@code a * b}, or CORRUPT naming {@code what} when the product does not fit in a signed long. */
    static long multiply(long a, long b, String what) throws ImageRejectedException {
        try {
            if (a < 0 || b < 0) {
                throw new ArithmeticException();
            }
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw corrupt(what + " is impossibly large (" + Long.toUnsignedString(a) + " x "
                    + Long.toUnsignedString(b) + " bytes): the header is damaged");
        }
    }

    private static boolean isZero(ByteBuffer buf, int at, int size) {
        for (int i = at; i < at + size; i++) {
            if (buf.get(i) != 0) {
                return false;
            }
        }
        return true;
    }

    private static long ceilDiv(long x, long y) {
        return x / y + (x % y == 0 ? 0 : 1);
    }

    private static byte[] bytes(ByteBuffer buf) {
        byte[] out = new byte[buf.limit()];
        buf.duplicate().position(0).get(out);
        return out;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
