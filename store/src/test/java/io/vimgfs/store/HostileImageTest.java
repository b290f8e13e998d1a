package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.blobNames;
import static io.vimgfs.store.StoreFiles.stagingFiles;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.store.ImageRejectedException.Reason;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images crafted so that QEMU reads a host file through them (issue 8, item 1). Each test first
 * shows with the real {@code qemu-img} that QEMU follows the reference, then that the store
 * refuses the image as unsafe and places nothing.
 */
class HostileImageTest {

    private static final int QCOW2_EXTENSION_BACKING_FORMAT = 0xe2792aca;

    @TempDir
    Path dir;
    private Path secret;
    private ImageStore store;

    @BeforeEach
    void openStore() throws IOException {
        byte[] content = new byte[4096];
        new Random(8).nextBytes(content);
        secret = Files.write(dir.resolve("secret"), content);
        store = ImageStore.open(dir.resolve("store"));
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @Test
    void zeroCapacitySparseVmdkWithAnEmbeddedFlatExtentIsRefused() throws IOException {
        Path evil = sparseVmdkHeaderOfCapacityZero(descriptor("monolithicFlat") + "RW 8 FLAT \"" + secret + "\" 0\n");
        assertQemuReadsTheSecretThrough(QemuImg.img("info", "--output=json", evil));

        ImageRejectedException e = assertRefused(evil, "evil:1");

        assertTrue(e.getMessage().contains(secret.toString()), e.getMessage());
    }

    @Test
    void textStartingWithVersion3IsADescriptorToQemuAndIsRefused() throws IOException {
        Path evil = Files.writeString(dir.resolve("version3.raw"),
                "version=3\n" + descriptor("monolithicFlat") + "RW 8 FLAT \"" + secret + "\" 0\n");
        assertEquals("vmdk", QemuImg.info(evil).get("format").asText(), "QEMU 7.2 probes version=3 as vmdk");
        assertQemuReadsTheSecretThrough(QemuImg.img("info", "--output=json", evil));

        assertRefused(evil, "evil:1");
    }

    @Test
    void anOverlayNamingVmdkAsTheFormatOfARawBaseIsRefused() throws IOException {
        Path baseFile = rawHoldingADescriptor();
        assertEquals("raw", QemuImg.info(baseFile).get("format").asText(), "probed, the base is plain raw");
        assertQemuReadsTheSecretThrough(QemuImg.img("info", "--output=json", "-f", "vmdk", baseFile));
        ImageInfo base = importAs(baseFile, "base:1");

        ImageRejectedException e = assertThrows(ImageRejectedException.class,
                () -> importAs(overlay("evil.qcow2", base.digest().hex(), "vmdk"), "evil:1"));

        assertEquals(Reason.FORBIDDEN_BACKING, e.reason(), e.getMessage());
        assertTrue(e.getMessage().contains("backing format 'vmdk'") && e.getMessage().contains("(raw)"),
                e.getMessage());
        assertEquals(List.of(base), store.list(), "only the base is stored");
    }

    @Test
    void anOverlayOnARawBaseMayNameRawOrNoFormat() throws IOException {
        ImageInfo base = importAs(rawHoldingADescriptor(), "base:1");
        Path withoutFormat = overlay("plain.qcow2", base.digest().hex(), "raw");
        hideBackingFormat(withoutFormat);

        ImageInfo asRaw = importAs(overlay("vm.qcow2", base.digest().hex(), "raw"), "vm:1");
        ImageInfo probed = importAs(withoutFormat, "vm:2");

        assertEquals(Optional.of(base.digest()), asRaw.backing());
        assertEquals(Optional.of(base.digest()), probed.backing());
    }

    @Test
    void anOverlayOnAnIsoMustNameRaw() throws IOException {
        Path isoFile = dir.resolve("cd.iso");
        Files.write(isoFile, new byte[64 * 1024]);
        QemuImg.writeAscii(isoFile, 0x8001, "CD001");
        ImageInfo iso = importAs(isoFile, "cd:1");
        assertEquals(ImageFormat.ISO, iso.format());

        ImageInfo vm = importAs(overlay("vm.qcow2", iso.digest().hex(), "raw"), "vm:1");
        ImageRejectedException e = assertThrows(ImageRejectedException.class,
                () -> importAs(overlay("as-iso.qcow2", iso.digest().hex(), "qcow2"), "vm:2"));

        assertEquals(Optional.of(iso.digest()), vm.backing());
        assertEquals(Reason.FORBIDDEN_BACKING, e.reason(), e.getMessage());
    }

    @Test
    void anOverlayOnAQcow2BaseMayNotReadItAsRaw() throws IOException {
        Path baseFile = dir.resolve("base.qcow2");
        QemuImg.create(baseFile, "qcow2", "64M");
        ImageInfo base = importAs(baseFile, "base:1");

        ImageRejectedException e = assertThrows(ImageRejectedException.class,
                () -> importAs(overlay("vm.qcow2", base.digest().hex(), "raw"), "vm:1"));

        assertEquals(Reason.FORBIDDEN_BACKING, e.reason(), e.getMessage());
    }

    // ---- helpers ----

    private static String descriptor(String createType) {
        return "# Disk DescriptorFile\nCID=12345678\nparentCID=ffffffff\ncreateType=\"" + createType + "\"\n";
    }

    /** A VMDK4 sparse header of capacity 0 whose embedded descriptor, at sector 1, is {@code text}. */
    private Path sparseVmdkHeaderOfCapacityZero(String text) throws IOException {
        ByteBuffer image = ByteBuffer.allocate(64 * 1024).order(ByteOrder.LITTLE_ENDIAN);
        image.put(0, "KDMV".getBytes(StandardCharsets.US_ASCII));
        image.putInt(4, 1).putInt(8, 3).putLong(12, 0).putLong(20, 128).putLong(28, 1).putLong(36, 20)
                .putInt(44, 512);
        image.put(512, text.getBytes(StandardCharsets.US_ASCII));
        return Files.write(dir.resolve("capacity0.vmdk"), image.array());
    }

    /** A 1 MiB raw disk whose first bytes are descriptor text QEMU's probe does not take for one. */
    private Path rawHoldingADescriptor() throws IOException {
        byte[] disk = new byte[1 << 20];
        byte[] text = ("createType=\"monolithicFlat\"\nCID=12345678\nparentCID=ffffffff\nRW 8 FLAT \""
                + secret + "\" 0\n").getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(text, 0, disk, 0, text.length);
        disk[disk.length - 1] = 1;
        return Files.write(dir.resolve("base.raw"), disk);
    }

    private Path overlay(String name, String backing, String backingFormat) {
        Path file = dir.resolve(name);
        QemuImg.img("create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, "-u", file, "64M");
        return file;
    }

    /** Renames the backing format extension to an unknown type, which QEMU skips: no format, QEMU probes. */
    private static void hideBackingFormat(Path qcow2) throws IOException {
        try (FileChannel ch = FileChannel.open(qcow2, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer head = ByteBuffer.allocate(4096);
            ch.read(head, 0);
            head.flip();
            for (int at = 72; at + 4 <= head.limit(); at += 4) {
                if (head.getInt(at) == QCOW2_EXTENSION_BACKING_FORMAT) {
                    ch.write(ByteBuffer.allocate(4).putInt(0, 0x7a7a7a7a), at);
                    return;
                }
            }
        }
        throw new AssertionError("no backing format extension in " + qcow2);
    }

    private void assertQemuReadsTheSecretThrough(String qemuInfo) {
        assertTrue(qemuInfo.contains("\"filename\": \"" + secret + "\""), "QEMU opens the host file: " + qemuInfo);
    }

    private ImageRejectedException assertRefused(Path file, String reference) throws IOException {
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> importAs(file, reference));
        assertEquals(Reason.FORBIDDEN_BACKING, e.reason(), e.getMessage());
        assertTrue(e.reason().unsafe(), "refused as unsafe, so the mount answers EPERM");
        assertEquals(List.of(), store.list());
        assertEquals(Set.of(), blobNames(dir.resolve("store")));
        assertEquals(List.of(), stagingFiles(dir.resolve("store")));
        return e;
    }

    private ImageInfo importAs(Path file, String reference) throws IOException {
        return store.importFile(file, Reference.parse(reference), n -> { });
    }
}
