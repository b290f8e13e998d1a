package io.vimgfs.store.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class VmdkDescriptorTest {

    @ParameterizedTest
    @ValueSource(strings = {
        "RW 2048 FLAT \"/etc/shadow\" 0",
        "  \n\n\tRW 2048 FLAT \"/etc/shadow\" 0",
        "RDONLY 2048 SPARSE \"/etc/shadow\"",
        "RW 2048FLAT \"/etc/shadow\" 0",
        "RW +9999999999999999999999 VMFS \"/etc/shadow\""})
    void extentLinesQemuWouldOpenAreFound(String line) {
        assertEquals(Optional.of("/etc/shadow"), firstExtent("# Disk DescriptorFile\n" + line + "\n")
                .map(e -> e.substring(e.indexOf('"') + 1, e.lastIndexOf('"'))));
    }

    @Test
    void anExtentSpreadOverLinesIsFoundBecauseScanfSpacesMatchNewlines() {
        assertTrue(firstExtent("version=1\nRW\n2048\nFLAT\n\"/etc/shadow\"\n0\n").isPresent());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "RW 0 SPARSE \"zero.vmdk\"",
        "RW -5 FLAT \"/etc/shadow\" 0",
        "RW 2048 FLAT \"\" 0",
        "RW 2048 FLAT /etc/shadow 0",
        "RW FLAT \"/etc/shadow\" 0",
        "ddb.adapterType = \"ide\""})
    void linesQemuSkipsAreNoExtent(String line) {
        assertEquals(Optional.empty(), firstExtent("version=1\n" + line + "\n"));
    }

    @Test
    void probeSkipsCommentsAndBlankLinesLikeQemu() {
        assertTrue(probes("# x\n  \r\nversion=1\n"));
        assertFalse(probes("\nversion=1\n"), "QEMU skips blank lines only when they hold spaces");
        assertTrue(probes("version=42\n"));
        assertFalse(probes("\tversion=1\n"));
        assertFalse(probes(" x\nversion=1\n"));
        assertFalse(probes("# only a comment"));
    }

    @Test
    void aMegabyteOfNewlinesIsScannedQuickly() {
        long start = System.nanoTime();
        assertEquals(Optional.empty(), firstExtent("\n".repeat(1 << 20) + "RW 5"));
        assertTrue(System.nanoTime() - start < 2_000_000_000L, "linear in the text");
    }

    private static Optional<String> firstExtent(String text) {
        return VmdkDescriptor.firstExtent(text.getBytes(StandardCharsets.ISO_8859_1));
    }

    private static boolean probes(String text) {
        ByteBuffer head = ByteBuffer.allocate(2048);
        head.put(text.getBytes(StandardCharsets.ISO_8859_1)).clear();
        return VmdkDescriptor.probesAsDescriptor(head);
    }
}
