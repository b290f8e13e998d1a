package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * SPEC §4: writes may come at any offset, with holes, and end with a truncate; whatever the order,
 * the digest is that of the bytes the file ends up holding.
 */
class UploadTest {
    private static final int MIB = 1 << 20;
    private static Path dir;

    /** One call a writer makes; {@code append} writes {@code gap} bytes past the current end. */
    record Op(boolean truncate, boolean append, int offset, int length, int seed) {
        @Override
        public String toString() {
            return truncate ? "truncate(" + offset + ")"
                    : "write(" + (append ? "end+" : "") + offset + ", " + length + " bytes)";
        }
    }

    @BeforeContainer
    static void createDirectory() throws IOException {
        dir = Files.createTempDirectory("vimgfs-upload-test");
    }

    @AfterContainer
    static void deleteDirectory() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    @Property(tries = 150)
    void theDigestIsThatOfTheBytesWritten(@ForAll("writers") List<Op> ops) throws IOException {
        Path file = dir.resolve(UUID.randomUUID() + ".part");
        byte[] model = new byte[0];
        try (Upload upload = Upload.create(file)) {
            for (Op op : ops) {
                if (op.truncate()) {
                    upload.truncate(op.offset());
                    model = Arrays.copyOf(model, op.offset());
                    continue;
                }
                long offset = op.append() ? model.length + (long) op.offset() : op.offset();
                byte[] data = StoreFiles.bytes("op" + op.seed(), op.length());
                assertEquals(data.length, upload.write(ByteBuffer.wrap(data), offset));
                model = Arrays.copyOf(model, (int) Math.max(model.length, offset + data.length));
                System.arraycopy(data, 0, model, (int) offset, data.length);
            }
            assertEquals(model.length, upload.size());
            assertEquals(StoreFiles.sha256(model), upload.seal(n -> { }).hex());
            assertArrayEquals(model, Files.readAllBytes(file));
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Provide
    Arbitrary<List<Op>> writers() {
        Arbitrary<Op> append = Combinators.combine(
                        Arbitraries.integers().between(0, 3 * MIB / 2).withDistribution(
                                net.jqwik.api.RandomDistribution.biased()),
                        Arbitraries.integers().between(1, 3 * MIB / 2), Arbitraries.integers())
                .as((gap, length, seed) -> new Op(false, true, gap, length, seed));
        Arbitrary<Op> anywhere = Combinators.combine(Arbitraries.integers().between(0, 3 * MIB),
                        Arbitraries.integers().between(1, MIB), Arbitraries.integers())
                .as((offset, length, seed) -> new Op(false, false, offset, length, seed));
        Arbitrary<Op> truncate = Arbitraries.integers().between(0, 4 * MIB).map(size -> new Op(true, false, size, 0, 0));
        Arbitrary<Op> op = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(6, append), net.jqwik.api.Tuple.of(2, anywhere), net.jqwik.api.Tuple.of(2, truncate));
        return op.list().ofMinSize(1).ofMaxSize(6);
    }
}
