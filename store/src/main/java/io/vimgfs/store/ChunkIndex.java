package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.BitSet;
import java.util.function.LongConsumer;

/**
 * The SHA-256 digest of every 1 MiB chunk of a disk layer, and which chunks are all zeros: what a
 * lazy reader checks each fetched range against before it hands out a byte (issue 19). Pushed as
 * a second layer of the vimgfs manifest ({@value #MEDIA_TYPE}), named by an annotation on the
 * disk layer, so the manifest digest authenticates it and registry GC keeps it with the image.
 *
 * <p>The blob, big-endian: the magic {@code VIMGCHK1}; the chunk size (u32); the layer size (u64);
 * the chunk count (u64, {@code ceil(layer size / chunk size)}); that many 32-byte digests, the
 * last chunk's over its short length; then a bitmap of {@code ceil(count / 8)} bytes, bit
 * {@code i % 8} of byte {@code i / 8} set when chunk {@code i} is all zeros. The same layer always
 * gives the same bytes.
 */
public final class ChunkIndex {
    public static final String MEDIA_TYPE = "application/vnd.vimgfs.chunks.v1";
    /** On the disk layer's descriptor: the digest of its chunk index layer. */
    public static final String ANNOTATION = "io.vimgfs.chunks";
    public static final int CHUNK_BYTES = 1 << 20;
    private static final long MAGIC = 0x56494d4743484b31L; // "VIMGCHK1"
    private static final int HEAD_BYTES = 8 + 4 + 8 + 8;
    private static final int DIGEST_BYTES = 32;
    private static final byte[] ZEROS = new byte[CHUNK_BYTES];

    private final int chunkBytes;
    private final long layerSize;
    private final byte[] digests;
    private final BitSet zero;

    private ChunkIndex(int chunkBytes, long layerSize, byte[] digests, BitSet zero) {
        this.chunkBytes = chunkBytes;
        this.layerSize = layerSize;
        this.digests = digests;
        this.zero = zero;
    }

    /** The blob size of the index of a layer of {@code layerSize} bytes, known before it is fetched. */
    public static long blobSize(long layerSize) {
        long count = count(layerSize, CHUNK_BYTES);
        return HEAD_BYTES + count * DIGEST_BYTES + (count + 7) / 8;
    }

    /** Reads the layer once from its start, reporting each chunk's bytes to {@code progress}. */
    public static ChunkIndex compute(FileChannel layer, long layerSize, LongConsumer progress) throws IOException {
        long count = count(layerSize, CHUNK_BYTES);
        if (count * DIGEST_BYTES > Integer.MAX_VALUE - HEAD_BYTES) {
            throw new IOException("a layer of " + layerSize + " bytes is too big for a chunk index");
        }
        byte[] digests = new byte[(int) count * DIGEST_BYTES];
        BitSet zero = new BitSet();
        MessageDigest sha = BlobFiles.newSha256();
        byte[] chunk = new byte[CHUNK_BYTES];
        ByteBuffer buffer = ByteBuffer.wrap(chunk);
        for (int i = 0; i < count; i++) {
            long offset = (long) i * CHUNK_BYTES;
            int length = (int) Math.min(CHUNK_BYTES, layerSize - offset);
            buffer.clear().limit(length);
            while (buffer.hasRemaining()) {
                if (layer.read(buffer, offset + buffer.position()) < 0) {
                    throw new IOException("the layer ended at " + (offset + buffer.position()) + " of " + layerSize + " bytes");
                }
            }
            sha.update(chunk, 0, length);
            System.arraycopy(sha.digest(), 0, digests, i * DIGEST_BYTES, DIGEST_BYTES);
            zero.set(i, Arrays.mismatch(chunk, 0, length, ZEROS, 0, length) < 0);
            progress.accept(length);
        }
        return new ChunkIndex(CHUNK_BYTES, layerSize, digests, zero);
    }

    /** Parses an index blob for a layer of {@code layerSize} bytes, refusing any other shape. */
    public static ChunkIndex parse(byte[] blob, long layerSize) throws StoreDamagedException {
        ByteBuffer in = ByteBuffer.wrap(blob);
        if (blob.length < HEAD_BYTES || in.getLong() != MAGIC) {
            throw new StoreDamagedException("not a vimgfs chunk index (no VIMGCHK1 header)");
        }
        int chunkBytes = in.getInt();
        long size = in.getLong();
        long count = in.getLong();
        if (chunkBytes != CHUNK_BYTES) {
            throw new StoreDamagedException("the chunk index uses " + chunkBytes + "-byte chunks; this version reads "
                    + CHUNK_BYTES);
        }
        if (size != layerSize || count != count(layerSize, chunkBytes)) {
            throw new StoreDamagedException("the chunk index describes " + count + " chunks of a " + size
                    + "-byte layer, but the layer has " + layerSize + " bytes");
        }
        if (blob.length != blobSize(layerSize)) {
            throw new StoreDamagedException("the chunk index has " + blob.length + " bytes, not the "
                    + blobSize(layerSize) + " its layer size needs");
        }
        byte[] digests = Arrays.copyOfRange(blob, HEAD_BYTES, HEAD_BYTES + (int) count * DIGEST_BYTES);
        BitSet zero = BitSet.valueOf(Arrays.copyOfRange(blob, HEAD_BYTES + digests.length, blob.length));
        if (zero.length() > count) {
            throw new StoreDamagedException("the chunk index marks chunk " + (zero.length() - 1) + " zero, past its "
                    + count + " chunks");
        }
        return new ChunkIndex(chunkBytes, layerSize, digests, zero);
    }

    public int chunkBytes() {
        return chunkBytes;
    }

    public long layerSize() {
        return layerSize;
    }

    public long count() {
        return digests.length / DIGEST_BYTES;
    }

    /** The expected digest of chunk {@code i}. */
    public Digest digestOf(long i) {
        int at = Math.toIntExact(i) * DIGEST_BYTES;
        return Digest.of(Arrays.copyOfRange(digests, at, at + DIGEST_BYTES));
    }

    public boolean isZero(long i) {
        return zero.get(Math.toIntExact(i));
    }

    /** The number of all-zero chunks. */
    public long zeroChunks() {
        return zero.cardinality();
    }

    /** Whether {@code chunk} (its whole length) is chunk {@code i}'s bytes. */
    public boolean matches(long i, byte[] chunk, int length) {
        return matches(i, chunk, 0, length);
    }

    /** Whether the {@code length} bytes of {@code bytes} from {@code offset} are chunk {@code i}'s bytes. */
    public boolean matches(long i, byte[] bytes, int offset, int length) {
        MessageDigest sha = BlobFiles.newSha256();
        sha.update(bytes, offset, length);
        int at = Math.toIntExact(i) * DIGEST_BYTES;
        return length == lengthOf(i) && Arrays.equals(sha.digest(), 0, DIGEST_BYTES, digests, at, at + DIGEST_BYTES);
    }

    /** The length of chunk {@code i}: the chunk size, shorter for the last. */
    public int lengthOf(long i) {
        return (int) Math.min(chunkBytes, layerSize - i * chunkBytes);
    }

    /** The blob, as {@link #parse} reads it. */
    public byte[] bytes() {
        long count = count();
        ByteBuffer out = ByteBuffer.allocate((int) blobSize(layerSize));
        out.putLong(MAGIC).putInt(chunkBytes).putLong(layerSize).putLong(count).put(digests);
        byte[] bitmap = zero.toByteArray(); // little-endian bit order, trailing zero bytes dropped
        out.put(bitmap).put(new byte[(int) ((count + 7) / 8) - bitmap.length]);
        return out.array();
    }

    public Digest digest() {
        return Digest.of(BlobFiles.sha256(bytes()));
    }

    /**
     * A stored vimgfs manifest with this index added as its second layer, named by an annotation
     * on the disk layer: what {@code vimgfs push} sends for an image stored without one.
     */
    public byte[] addTo(byte[] manifest) throws StoreDamagedException {
        byte[] blob = bytes();
        return OciLayout.withChunkIndex(manifest, Digest.of(BlobFiles.sha256(manifest)), Digest.of(BlobFiles.sha256(blob)),
                blob.length);
    }

    private static long count(long layerSize, int chunkBytes) {
        return (layerSize + chunkBytes - 1) / chunkBytes;
    }
}
