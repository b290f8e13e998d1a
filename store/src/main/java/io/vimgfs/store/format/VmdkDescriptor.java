package io.vimgfs.store.format;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * The text form of a VMDK descriptor as QEMU 7.2 reads it (block/vmdk.c): whether QEMU's probe
 * takes a file for one, and whether one names an extent, another file that holds its data. Each
 * rule is QEMU's own or broader, never narrower, so what passes here cannot name a file in QEMU.
 */
final class VmdkDescriptor {

    private static final byte[] VERSION = "version=".getBytes(StandardCharsets.US_ASCII);
    /** sscanf's {@code %10s}: at most this many characters of the access and type words. */
    private static final int WORD_CHARS = 10;

    private VmdkDescriptor() {}

    /**
     * QEMU's {@code vmdk_probe} on text: it skips {@code #} comment lines and lines of spaces
     * (an optional {@code \r} before the newline) and scores 100 when the next line is
     * {@code version=1}, {@code 2} or {@code 3}. We take any {@code version=} value, so a later
     * QEMU accepting another version cannot turn a stored raw file into a descriptor.
     *
     * @param head the first 2048 bytes as QEMU's probe sees them: zeros past the end of the file
     */
    static boolean probesAsDescriptor(ByteBuffer head) {
        int end = head.limit();
        int p = 0;
        while (p < end) {
            byte c = head.get(p);
            if (c == '#') {
                while (p < end && head.get(p) != '\n') {
                    p++;
                }
                p++;
            } else if (c == ' ') {
                while (p < end && head.get(p) == ' ') {
                    p++;
                }
                if (p < end && head.get(p) == '\r') {
                    p++;
                }
                if (p == end || head.get(p) != '\n') {
                    return false;
                }
                p++;
            } else {
                return FormatProbe.startsWith(head, p, VERSION);
            }
        }
        return false;
    }

    /**
     * The first extent line QEMU's {@code vmdk_parse_extents} would open, as written. QEMU runs
     * {@code sscanf("%10s %ld %10s \"%511[^\n\r\"]\"")} at every line start, so the fields may be
     * spread over several lines (whitespace in a scanf format matches newlines too). It opens the
     * named file when the access word is {@code RW}, the type is one it knows and the size is
     * positive; we count any access word and any type, so only the size rule narrows the match.
     *
     * @param text the descriptor up to its first NUL, as QEMU's {@code vmdk_read_desc} leaves it
     */
    static Optional<String> firstExtent(byte[] text) {
        int lastWordStart = -1;
        for (int p = 0; p < text.length; p = nextLine(text, p)) {
            // Line starts inside the whitespace before an already parsed word parse the same.
            if (p <= lastWordStart) {
                continue;
            }
            lastWordStart = skipSpace(text, p);
            if (isExtent(text, lastWordStart)) {
                int eol = nextLine(text, lastWordStart);
                return Optional.of(new String(text, lastWordStart, eol - lastWordStart, StandardCharsets.ISO_8859_1)
                        .strip());
            }
        }
        return Optional.empty();
    }

    /** Whether sscanf from {@code at} (past leading whitespace) fills word, size, word and a quoted name. */
    private static boolean isExtent(byte[] text, int at) {
        int p = word(text, at);
        if (p == at) {
            return false;
        }
        p = skipSpace(text, p);
        boolean negative = false;
        if (p < text.length && (text[p] == '+' || text[p] == '-')) {
            negative = text[p] == '-';
            p++;
        }
        int digitsAt = p;
        boolean nonZero = false;
        while (p < text.length && text[p] >= '0' && text[p] <= '9') {
            nonZero |= text[p] != '0';
            p++;
        }
        if (p == digitsAt || !nonZero || negative) {
            // No number, or a size QEMU skips: zero or below (an overflow saturates to the same sign).
            return false;
        }
        int typeAt = skipSpace(text, p);
        p = word(text, typeAt);
        if (p == typeAt) {
            return false;
        }
        p = skipSpace(text, p);
        return p + 1 < text.length && text[p] == '"' && text[p + 1] != '"' && text[p + 1] != '\n'
                && text[p + 1] != '\r';
    }

    /** The end of sscanf's {@code %10s} from {@code at}: up to ten non-space characters. */
    private static int word(byte[] text, int at) {
        int p = at;
        while (p < text.length && p - at < WORD_CHARS && !isSpace(text[p])) {
            p++;
        }
        return p;
    }

    private static int skipSpace(byte[] text, int at) {
        int p = at;
        while (p < text.length && isSpace(text[p])) {
            p++;
        }
        return p;
    }

    /** C's isspace in the C locale, which is what scanf skips. */
    private static boolean isSpace(byte c) {
        return c == ' ' || c == '\t' || c == '\n' || c == 0x0b || c == '\f' || c == '\r';
    }

    private static int nextLine(byte[] text, int at) {
        int p = at;
        while (p < text.length && text[p] != '\n') {
            p++;
        }
        return Math.min(p + 1, text.length);
    }
}
