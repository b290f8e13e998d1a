package io.vimgfs.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The one range a Range header asks of a blob, or a 416 that names the blob's size. */
class ByteRangeTest {
    private static Optional<ByteRange> parse(String header, long size) throws RegistryError {
        return ByteRange.parse(Optional.of(header), size);
    }

    @Test
    void firstLastOpenEndedAndSuffixRanges() throws Exception {
        assertEquals(Optional.empty(), ByteRange.parse(Optional.empty(), 100));
        assertEquals(new ByteRange(0, 9), parse("bytes=0-9", 100).orElseThrow());
        assertEquals(new ByteRange(90, 99), parse("bytes=90-", 100).orElseThrow());
        assertEquals(new ByteRange(90, 99), parse("bytes=90-500", 100).orElseThrow(), "a last byte past the end is clipped");
        assertEquals(new ByteRange(80, 99), parse("bytes=-20", 100).orElseThrow());
        assertEquals(new ByteRange(0, 99), parse("bytes=-500", 100).orElseThrow());
        assertEquals(20, parse("bytes=80-99", 100).orElseThrow().length());
    }

    @Test
    void unsatisfiableAndMultipleRangesAre416WithTheSize() {
        for (String header : new String[] {"bytes=100-", "bytes=100-200", "bytes=5-1", "bytes=-0", "bytes=0-1,5-6",
            "items=0-1", "bytes=-", "bytes=99999999999999999999-"}) {
            RegistryError e = assertThrows(RegistryError.class, () -> parse(header, 100), header);
            assertEquals(416, e.status, header);
            assertEquals("bytes */100", e.headers.get("Content-Range"), header);
        }
    }
}
