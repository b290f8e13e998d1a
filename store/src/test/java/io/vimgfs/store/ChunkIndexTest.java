package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chunk index a push writes for lazy readers: one SHA-256 per 1 MiB chunk (the last one
 * short), a map of all-zero chunks, the same bytes for the same layer, and a parser that refuses
 * any blob not shaped for the layer it claims to describe.
 */
class ChunkIndexTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void eachChunkHasItsDigestAndZeroChunksAreMapped() throws IOException {
        byte[] layer = new byte[2 * MIB + MIB / 2]; // data, zeros, a short data chunk
        byte[] data = StoreFiles.bytes("chunk", MIB);
        System.arraycopy(data, 0, layer, 0, MIB);
        System.arraycopy(data, 0, layer, 2 * MIB, MIB / 2);
        Path file = Files.write(dir.resolve("layer"), layer);

        ChunkIndex index = compute(file);

        assertEquals(3, index.count());
        assertEquals(Digest.of(BlobFiles.sha256(data)), index.digestOf(0));
        assertEquals(Digest.of(BlobFiles.sha256(new byte[MIB])), index.digestOf(1));
        assertEquals(Digest.of(BlobFiles.sha256(Arrays.copyOf(data, MIB / 2))), index.digestOf(2), "the last chunk is short");
        assertFalse(index.isZero(0));
        assertTrue(index.isZero(1));
        assertFalse(index.isZero(2));
        assertEquals(1, index.zeroChunks());
        assertEquals(MIB / 2, index.lengthOf(2));
        assertTrue(index.matches(0, data, MIB));
        data[4096] ^= 1;
        assertFalse(index.matches(0, data, MIB), "one flipped byte");
        assertFalse(index.matches(2, layer, MIB), "a chunk read past its end");
    }

    @Test
    void theSameLayerGivesTheSameBlobAndItParsesBack() throws IOException {
        Path file = Files.write(dir.resolve("layer"), StoreFiles.bytes("same", 5 * MIB + 17));

        ChunkIndex first = compute(file);
        ChunkIndex parsed = ChunkIndex.parse(first.bytes(), Files.size(file));

        assertEquals(compute(file).digest(), first.digest());
        assertEquals(ChunkIndex.blobSize(Files.size(file)), first.bytes().length);
        assertArrayEquals(first.bytes(), parsed.bytes());
        assertEquals(6, parsed.count());
        assertEquals(first.digestOf(5), parsed.digestOf(5));
    }

    @Test
    void aSparseDiskIsMostlyZeroChunks() throws IOException {
        Path file = dir.resolve("sparse");
        try (FileChannel channel = FileChannel.open(file, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            channel.write(ByteBuffer.wrap(StoreFiles.bytes("boot", 4096)), 7L * MIB);
            channel.truncate(64L * MIB);
            channel.write(ByteBuffer.wrap(new byte[1]), 64L * MIB - 1);
        }
        ChunkIndex index = compute(file);
        assertEquals(64, index.count());
        assertEquals(63, index.zeroChunks());
        assertFalse(index.isZero(7));
    }

    @Test
    void aBlobNotShapedForItsLayerIsRefused() throws IOException {
        Path file = Files.write(dir.resolve("layer"), StoreFiles.bytes("shape", 3 * MIB));
        byte[] blob = compute(file).bytes();
        long size = Files.size(file);

        assertRefused(blob, size + 1, "but the layer has");
        assertRefused(Arrays.copyOf(blob, 10), size, "no VIMGCHK1 header");
        assertRefused(Arrays.copyOf(blob, blob.length - 1), size, "bytes, not the");
        byte[] longer = Arrays.copyOf(blob, blob.length + 1);
        assertRefused(longer, size, "bytes, not the");
        byte[] magic = blob.clone();
        magic[0] = 'X';
        assertRefused(magic, size, "VIMGCHK1");
        byte[] chunkSize = blob.clone();
        ByteBuffer.wrap(chunkSize).putInt(8, 4 << 20);
        assertRefused(chunkSize, size, "4194304-byte chunks");
        byte[] pastEnd = blob.clone();
        pastEnd[pastEnd.length - 1] = (byte) 0x80; // chunk 7 of 3
        assertRefused(pastEnd, size, "past its 3 chunks");
    }

    private static void assertRefused(byte[] blob, long layerSize, String why) {
        StoreDamagedException e = assertThrows(StoreDamagedException.class, () -> ChunkIndex.parse(blob, layerSize));
        assertTrue(e.getMessage().contains(why), e.getMessage());
    }

    private static ChunkIndex compute(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file)) {
            return ChunkIndex.compute(channel, Files.size(file), n -> { });
        }
    }
}
