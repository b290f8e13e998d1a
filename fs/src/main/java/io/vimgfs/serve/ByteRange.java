package io.vimgfs.serve;

import io.vimgfs.serve.RegistryError.Code;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** One byte range of a blob, from a {@code Range: bytes=…} header (RFC 9110 §14.1.2). */
record ByteRange(long first, long last) {
    private static final Pattern SINGLE = Pattern.compile("bytes=(\\d*)-(\\d*)");

    long length() {
        return last - first + 1;
    }

    /**
     * The range asked of a blob of {@code size} bytes, or empty for the whole blob. A range past
     * the end is a 416 naming the size; a list of ranges is refused the same way, since a lazy
     * fetcher asks one range per request and a multipart answer would cost more than it saves.
     */
    static Optional<ByteRange> parse(Optional<String> header, long size) throws RegistryError {
        if (header.isEmpty()) {
            return Optional.empty();
        }
        Matcher m = SINGLE.matcher(header.get().strip());
        if (!m.matches() || (m.group(1).isEmpty() && m.group(2).isEmpty())) {
            throw unsatisfiable(header.get(), size, "ask one range, as bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX");
        }
        try {
            long first;
            long last;
            if (m.group(1).isEmpty()) {
                long suffix = Long.parseLong(m.group(2));
                if (suffix == 0) {
                    throw unsatisfiable(header.get(), size, "an empty suffix");
                }
                first = Math.max(0, size - suffix);
                last = size - 1;
            } else {
                first = Long.parseLong(m.group(1));
                last = m.group(2).isEmpty() ? size - 1 : Math.min(size - 1, Long.parseLong(m.group(2)));
                if (!m.group(2).isEmpty() && Long.parseLong(m.group(2)) < first) {
                    throw unsatisfiable(header.get(), size, "the range ends before it starts");
                }
            }
            if (first >= size) {
                throw unsatisfiable(header.get(), size, "the blob has " + size + " bytes");
            }
            return Optional.of(new ByteRange(first, last));
        } catch (NumberFormatException e) {
            throw unsatisfiable(header.get(), size, "a number is out of range");
        }
    }

    private static RegistryError unsatisfiable(String header, long size, String why) {
        return new RegistryError(Code.RANGE_INVALID, "Range: " + header + " cannot be served: " + why)
                .with("Content-Range", "bytes */" + size);
    }
}
