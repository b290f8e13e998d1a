package io.vimgfs.store.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.vimgfs.store.ImageFormat;
import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.ImageRejectedException.Reason;
import io.vimgfs.store.QemuImg;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class FormatProbeTest {

    @TempDir
    Path dir;

    private Path raw;
    private final List<FileChannel> opened = new ArrayList<>();

    /** A 16 MiB raw disk with 1 MiB of data at the start and 64 KiB at 5 MiB. */
    @BeforeEach
    void makeRawDisk() throws IOException {
        raw = dir.resolve("disk.raw");
        byte[] data = new byte[1 << 20];
        new Random(42).nextBytes(data);
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(data), 0);
            ch.write(ByteBuffer.wrap(data, 0, 64 * 1024), 5L << 20);
            ch.truncate(16L << 20);
            ch.write(ByteBuffer.allocate(1), (16L << 20) - 1);
        }
    }

    @AfterEach
    void closeChannels() throws IOException {
        for (FileChannel ch : opened) {
            ch.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"vmdk", "vhdx", "vdi"})
    void imagesConvertedByQemuProbeAsQemuSeesThem(String format) throws IOException {
        Path image = dir.resolve("disk." + format);
        QemuImg.convert(raw, image, format);

        assertSameAsQemu(image, FormatProbe.probe(open(image)));
    }

    @Test
    void streamOptimizedVmdkProbesAsQemuSeesIt() throws IOException {
        Path image = dir.resolve("stream.vmdk");
        QemuImg.convert(raw, image, "vmdk", "-o", "subformat=streamOptimized");

        assertSameAsQemu(image, FormatProbe.probe(open(image)));
    }

    @Test
    void fixedVhdxAndStaticVdiProbeAsQemuSeesThem() throws IOException {
        Path vhdx = dir.resolve("fixed.vhdx");
        Path vdi = dir.resolve("static.vdi");
        QemuImg.create(vhdx, "vhdx", "4M", "subformat=fixed");
        QemuImg.create(vdi, "vdi", "4M", "static=on");

        assertSameAsQemu(vhdx, FormatProbe.probe(open(vhdx)));
        assertSameAsQemu(vdi, FormatProbe.probe(open(vdi)));
    }

    @Test
    void rawDiskIsRawWithItsLengthAsSize() throws IOException {
        ProbeResult result = FormatProbe.probe(open(raw));

        assertSameAsQemu(raw, result);
        assertEquals(new ProbeResult(ImageFormat.RAW, 16L << 20, 0, Optional.empty(), Optional.empty()), result);
    }

    @Test
    void threeByteFileIsRawOfThreeBytes() throws IOException {
        Path tiny = Files.write(dir.resolve("tiny"), new byte[] {1, 2, 3});

        assertEquals(ProbeResult.of(ImageFormat.RAW, 3), FormatProbe.probe(open(tiny)));
    }

    @Test
    void emptyFileIsRefused() throws IOException {
        Path empty = Files.createFile(dir.resolve("empty"));

        assertRejected(empty, Reason.EMPTY, "empty");
    }

    @Test
    void isoIsRecognisedByItsVolumeDescriptor() throws IOException {
        Path iso = dir.resolve("cd.iso");
        Files.write(iso, new byte[64 * 1024]);
        QemuImg.writeAscii(iso, 0x8001, "CD001");

        assertEquals(ProbeResult.of(ImageFormat.ISO, 64 * 1024), FormatProbe.probe(open(iso)));
    }

    @Test
    void vmdkDescriptorFileIsRefusedBecauseItNamesOtherFiles() throws IOException {
        Path descriptor = dir.resolve("flat.vmdk");
        QemuImg.create(descriptor, "vmdk", "1M", "subformat=monolithicFlat");

        assertRejected(descriptor, Reason.FORBIDDEN_BACKING, "descriptor");
    }

    @Test
    void textThatQemuWouldTakeForAVmdkDescriptorIsRefused() throws IOException {
        Path text = Files.writeString(dir.resolve("sneaky"),
                "# not a disk\nversion=1\nRW 2048 FLAT \"/etc/shadow\" 0\n", StandardCharsets.US_ASCII);

        assertRejected(text, Reason.FORBIDDEN_BACKING, "descriptor");
    }

    @Test
    void differencingVmdkIsRefusedBecauseItsParentIsOutsideTheStore() throws IOException {
        Path base = dir.resolve("base.vmdk");
        Path overlay = dir.resolve("overlay.vmdk");
        QemuImg.create(base, "vmdk", "1M");
        QemuImg.img("create", "-q", "-f", "vmdk", "-b", base, "-F", "vmdk", overlay);

        assertRejected(overlay, Reason.FORBIDDEN_BACKING, "parent");
    }

    @Test
    void vmdkWhoseGrainDirectoryIsPastTheEndIsTruncated() throws IOException {
        Path image = dir.resolve("disk.vmdk");
        QemuImg.convert(raw, image, "vmdk");
        QemuImg.writeLong(image, 56, Long.reverseBytes(1L << 30));

        assertRejected(image, Reason.TRUNCATED, "vmdk grain directory");
    }

    @Test
    void vdiCutShortIsTruncated() throws IOException {
        Path image = dir.resolve("disk.vdi");
        QemuImg.convert(raw, image, "vdi");
        QemuImg.truncate(image, Files.size(image) - 4096);

        assertRejected(image, Reason.TRUNCATED, "vdi data area");
    }

    @Test
    void vhdxCutBeforeItsMetadataIsTruncated() throws IOException {
        Path image = dir.resolve("disk.vhdx");
        QemuImg.convert(raw, image, "vhdx");
        QemuImg.truncate(image, 1 << 20);

        assertRejected(image, Reason.TRUNCATED, "vhdx");
    }

    @Test
    void vhdxGuidsUseTheMixedEndianLayoutQemuWrites() throws IOException {
        byte[] metadataRegion = FormatProbe.guid("8B7CA206-4790-4B9A-B8FE-575F050F886E");
        assertEquals("06a27c8b90479a4bb8fe575f050f886e", HexFormat.of().formatHex(metadataRegion));

        Path image = dir.resolve("disk.vhdx");
        QemuImg.convert(raw, image, "vhdx");
        ByteBuffer regionTable = FormatProbe.readAt(open(image), 192 * 1024, 16 + 2 * 32);
        byte[] ids = new byte[2 * 32];
        regionTable.get(16, ids);
        assertTrue(Arrays.equals(ids, 0, 16, metadataRegion, 0, 16)
                || Arrays.equals(ids, 32, 48, metadataRegion, 0, 16), "metadata region GUID in the region table");
    }

    @Test
    void probingLeavesTheChannelPositionAlone() throws IOException {
        Path image = dir.resolve("disk.vdi");
        QemuImg.convert(raw, image, "vdi");
        FileChannel ch = open(image);
        ch.position(1234);

        FormatProbe.probe(ch);

        assertEquals(1234, ch.position());
    }

    @Test
    void qedWithABackingFileIsRefusedBecauseQemuWouldFollowIt() throws IOException {
        Path qed = dir.resolve("x.qed");
        Files.write(qed, new byte[4096]);
        QemuImg.writeAscii(qed, 0, "QED\0");
        QemuImg.writeLong(qed, 16, Long.reverseBytes(1));

        assertRejected(qed, Reason.FORBIDDEN_BACKING, "backing file");
    }

    @ParameterizedTest
    @ValueSource(strings = {"version=3\n", "version=3\r\n", "# comment\n   \r\nversion=1\n", "  \nversion=9\n"})
    void anyVersionLineQemuWouldReachMakesADescriptor(String start) throws IOException {
        Path text = Files.writeString(dir.resolve("text"), start + "createType=\"vmfs\"\nRW 8 VMFS \"x\"\n",
                StandardCharsets.US_ASCII);

        assertRejected(text, Reason.FORBIDDEN_BACKING, "descriptor");
    }

    @Test
    void aVersionLineAfterOtherTextIsRawAsQemuProbesIt() throws IOException {
        Path text = Files.writeString(dir.resolve("text"), "hello\nversion=1\n", StandardCharsets.US_ASCII);

        assertEquals("raw", QemuImg.info(text).get("format").asText());
        assertEquals(ImageFormat.RAW, FormatProbe.probe(open(text)).format());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vpc", "qed", "parallels"})
    void formatsQemuProbesButWeDoNotStoreAreRefusedNotStoredAsRaw(String format) throws IOException {
        Path image = dir.resolve("disk." + format);
        QemuImg.create(image, format, "4M");
        assertEquals(format, QemuImg.info(image).get("format").asText());

        assertRejected(image, Reason.CORRUPT, "a " + format + " image");
    }

    @ParameterizedTest
    @ValueSource(strings = {"Bochs Virtual HD Image", "LUKS\u00ba\u00be",
        "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"})
    void otherFormatsQemuProbesByMagicAreRefused(String magic) throws IOException {
        Path image = dir.resolve("disk");
        Files.write(image, new byte[64 * 1024]);
        Files.write(image, magic.getBytes(StandardCharsets.ISO_8859_1), StandardOpenOption.WRITE);

        assertRejected(image, Reason.CORRUPT, "a format vimgfs does not store");
    }

    @Test
    void qcowVersion1WithABackingFileIsRefusedAsUnsafe() throws IOException {
        Path image = dir.resolve("old.qcow");
        QemuImg.img("create", "-q", "-f", "qcow", "-b", raw, "-F", "raw", image);
        assertEquals("qcow", QemuImg.info(image).get("format").asText());

        assertRejected(image, Reason.FORBIDDEN_BACKING, "qcow (version 1)");
    }

    @Test
    void aFileCarryingTwoFormatsSignaturesIsRefused() throws IOException {
        Path image = dir.resolve("disk.vmdk");
        QemuImg.convert(raw, image, "vmdk");
        // A VMDK4 header's grain offset field lies where QEMU's vdi probe looks for its signature.
        QemuImg.writeInt(image, 0x40, Integer.reverseBytes(0xbeda107f));

        assertRejected(image, Reason.CORRUPT, "several formats (vmdk, vdi)");
    }

    @Test
    void zeroSizedVmdkFromQemuImgNamesNoExtentAndIsAccepted() throws IOException {
        Path image = dir.resolve("zero.vmdk");
        QemuImg.create(image, "vmdk", "0");

        assertEquals(ProbeResult.of(ImageFormat.VMDK, 0), FormatProbe.probe(open(image)));
    }

        private FileChannel open(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path);
        opened.add(ch);
        return ch;
    }

    static void assertSameAsQemu(Path image, ProbeResult result) {
        JsonNode info = QemuImg.info(image);
        assertEquals(info.get("format").asText(), result.format().id(), "format of " + image);
        assertEquals(info.get("virtual-size").asLong(), result.virtualSize(), "virtual size of " + image);
    }

    static ImageRejectedException assertRejected(Path image, Reason reason, String mentioning) {
        ImageRejectedException e;
        try (FileChannel ch = FileChannel.open(image)) {
            e = assertThrows(ImageRejectedException.class, () -> FormatProbe.probe(ch));
        } catch (IOException io) {
            throw new AssertionError(io);
        }
        assertEquals(reason, e.reason(), e.getMessage());
        assertTrue(e.getMessage().toLowerCase().contains(mentioning.toLowerCase()),
                "message mentions '" + mentioning + "': " + e.getMessage());
        return e;
    }
}
