package io.vimgfs.store;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.zip.CRC32C;

/**
 * The journal of catalog changes, {@code .vimgfs/journal} beside index.json: what makes a
 * change durable without rewriting the whole index. It owns the file's format and nothing else;
 * callers hold the store lock to append or truncate.
 *
 * <p>After an 8-byte magic, the file is a sequence of frames, one per commit:
 * {@code length (4) | crc32c of body (4) | body}, the body being
 * {@code sequence (8) | count (4) | change...}. Sequences increase by one per commit and go on
 * across compactions; index.json records the sequence it includes ({@link OciLayout#GENERATION}),
 * so a frame at or below it is already in the index and replay skips it. That makes compaction
 * (rewrite index.json, then truncate the journal) safe to interrupt at any point. The first
 * frame whose length runs past the end or whose checksum is wrong ends the journal: a crash tore
 * it, and it was never acknowledged.
 */
final class Journal implements Closeable {
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();
    static final String FILE = "journal";
    static final byte[] MAGIC = "VGFSJNL1".getBytes(StandardCharsets.US_ASCII);
    static final long START = MAGIC.length;
    private static final int FRAME_HEAD = 8;
    /** A frame longer than this is damage, not a commit: no group commit comes near it. */
    private static final int MAX_FRAME = 256 << 20;

    private static final byte SET_NAME = 1;
    private static final byte REMOVE_NAME = 2;
    private static final byte ADD_IMAGE = 3;
    private static final byte REMOVE_IMAGE = 4;
    private static final byte HOLD_CHANGED = 5;
    private static final byte DROP_IMAGE = 6;
    private static final byte SET_FOREIGN = 7;
    private static final byte REMOVE_FOREIGN = 8;
    /** An AddImage whose manifest names a chunk index: its own type, so stores without one stay readable by older versions. */
    private static final byte ADD_IMAGE_CHUNKED = 9;

    private final Path file;
    /** Open for appending; null for a store on a read-only filesystem. */
    private final FileChannel channel;

    private Journal(Path file, FileChannel channel) {
        this.file = file;
        this.channel = channel;
    }

    /** Opens the journal for appending, creating it (durably) if absent. Call under the store lock. */
    static Journal open(Path file) throws IOException {
        boolean created = !Files.exists(file);
        FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        try {
            if (channel.size() < START) {
                channel.truncate(0);
                write(channel, ByteBuffer.wrap(MAGIC), 0);
                channel.force(true);
                if (created) {
                    BlobFiles.syncDirectory(file.getParent());
                }
            }
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        return new Journal(file, channel);
    }

    /** The journal of a store on a read-only filesystem: read, never written. */
    static Journal readOnly(Path file) {
        return new Journal(file, null);
    }

    /** Whether this process may append (it holds the store writable). */
    boolean writable() {
        return channel != null;
    }

    /** One commit read back. */
    record Frame(long sequence, List<Change> changes, long end) {
    }

    /**
     * The frames from {@code from} on, up to the first torn or corrupt one; {@code end} is where
     * the sound frames end, {@code damage} says what was dropped after them.
     */
    record Contents(List<Frame> frames, long end, Optional<String> damage) {
    }

    /** Identifies the file and how far it reaches: a commit changes the size, a compaction the size too. */
    record Version(Object fileKey, long size) {
        static final Version ABSENT = new Version(null, 0);
    }

    Version version() throws IOException {
        try {
            BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
            return new Version(attributes.fileKey(), attributes.size());
        } catch (NoSuchFileException e) {
            return Version.ABSENT;
        }
    }

    /** Reads the frames from {@code from} (at least {@link #START}) to the end of the file. */
    Contents read(long from) throws IOException {
        byte[] bytes;
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = in.size();
            if (size < START) {
                return new Contents(List.of(), START, size == 0 ? Optional.empty()
                        : Optional.of("the journal is " + size + " bytes, shorter than its header"));
            }
            from = Math.max(from, START);
            if (from == START && !Arrays.equals(readAt(in, 0, MAGIC.length), MAGIC)) {
                throw new StoreDamagedException("store journal " + file + " does not start with " + new String(MAGIC,
                        StandardCharsets.US_ASCII) + ": not a vimgfs journal; move it away to open the store from index.json");
            }
            if (from >= size) {
                return new Contents(List.of(), from, Optional.empty());
            }
            bytes = readAt(in, from, (int) Math.min(Integer.MAX_VALUE - 8, size - from));
        } catch (NoSuchFileException e) {
            return new Contents(List.of(), START, Optional.empty());
        }
        return parse(bytes, from);
    }

    static Contents parse(byte[] bytes, long base) {
        List<Frame> frames = new ArrayList<>();
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN);
        int at = 0;
        while (at < bytes.length) {
            if (bytes.length - at < FRAME_HEAD) {
                return damaged(frames, base, at, bytes.length, "a torn frame header");
            }
            int length = buffer.getInt(at);
            int crc = buffer.getInt(at + 4);
            if (length <= 12 || length > MAX_FRAME) {
                return damaged(frames, base, at, bytes.length, "a frame of impossible length " + length);
            }
            if (bytes.length - at - FRAME_HEAD < length) {
                return damaged(frames, base, at, bytes.length, "a torn frame (" + length + " bytes announced, "
                        + (bytes.length - at - FRAME_HEAD) + " present)");
            }
            CRC32C check = new CRC32C();
            check.update(bytes, at + FRAME_HEAD, length);
            if ((int) check.getValue() != crc) {
                return damaged(frames, base, at, bytes.length, "a frame whose checksum is wrong");
            }
            try {
                frames.add(decode(bytes, at + FRAME_HEAD, length, base + at + FRAME_HEAD + length));
            } catch (IOException | RuntimeException e) {
                return damaged(frames, base, at, bytes.length, "a frame that does not decode (" + e.getMessage() + ")");
            }
            at += FRAME_HEAD + length;
        }
        return new Contents(frames, base + at, Optional.empty());
    }

    private static Contents damaged(List<Frame> frames, long base, int at, int total, String what) {
        return new Contents(frames, base + at, Optional.of(what + " at offset " + (base + at) + "; "
                + (total - at) + " bytes dropped"));
    }

    /**
     * Appends one commit at {@code at} (where the sound frames end) and fsyncs it: the one fsync
     * of a group commit. Returns the new end. The frame is written in two parts so a crash test
     * can stop between them ({@link CrashPoint#JOURNAL_TORN}).
     */
    long append(long at, long sequence, List<? extends Change> changes, Consumer<CrashPoint> crashHook)
            throws IOException {
        byte[] frame = encodeFrame(sequence, changes);
        int half = frame.length / 2;
        write(channel, ByteBuffer.wrap(frame, 0, half), at);
        crashHook.accept(CrashPoint.JOURNAL_TORN);
        write(channel, ByteBuffer.wrap(frame, half, frame.length - half), at + half);
        crashHook.accept(CrashPoint.JOURNAL_WRITTEN);
        channel.force(false);
        return at + frame.length;
    }

    /** Cuts the journal back to {@code end}: after a compaction, a failed append, or a torn tail. */
    void truncate(long end) throws IOException {
        channel.truncate(Math.max(end, START));
        channel.force(true);
    }

    @Override
    public void close() throws IOException {
        if (channel != null) {
            channel.close();
        }
    }

    static byte[] encodeFrame(long sequence, List<? extends Change> changes) {
        ByteArrayOutputStream body = new ByteArrayOutputStream(64 + changes.size() * 96);
        try (DataOutputStream out = new DataOutputStream(body)) {
            out.writeLong(sequence);
            out.writeInt(changes.size());
            for (Change change : changes) {
                encode(out, change);
            }
        } catch (IOException e) {
            throw new IllegalStateException("writing to memory cannot fail", e);
        }
        byte[] bytes = body.toByteArray();
        CRC32C crc = new CRC32C();
        crc.update(bytes);
        ByteBuffer frame = ByteBuffer.allocate(FRAME_HEAD + bytes.length);
        frame.putInt(bytes.length).putInt((int) crc.getValue()).put(bytes);
        return frame.array();
    }

    private static void encode(DataOutputStream out, Change change) throws IOException {
        if (change instanceof Change.SetName set) {
            out.writeByte(SET_NAME);
            name(out, set.name());
            digest(out, set.image());
        } else if (change instanceof Change.RemoveName remove) {
            out.writeByte(REMOVE_NAME);
            name(out, remove.name());
        } else if (change instanceof Change.AddImage add && add.image().chunks().isPresent()) {
            out.writeByte(ADD_IMAGE_CHUNKED);
            image(out, add.image());
            digest(out, add.image().chunks().get());
        } else if (change instanceof Change.AddImage add) {
            out.writeByte(ADD_IMAGE);
            image(out, add.image());
        } else if (change instanceof Change.RemoveImage remove) {
            out.writeByte(REMOVE_IMAGE);
            digest(out, remove.image());
        } else if (change instanceof Change.DropImage drop) {
            out.writeByte(DROP_IMAGE);
            digest(out, drop.image());
        } else if (change instanceof Change.HoldChanged hold) {
            out.writeByte(HOLD_CHANGED);
            out.writeUTF(hold.holder());
            digest(out, hold.image());
            out.writeBoolean(hold.held());
        } else if (change instanceof Change.SetForeign set) {
            out.writeByte(SET_FOREIGN);
            foreignKey(out, set.key());
            byte[] descriptor = JSON.writeValueAsBytes(set.descriptor());
            out.writeInt(descriptor.length);
            out.write(descriptor);
        } else if (change instanceof Change.RemoveForeign remove) {
            out.writeByte(REMOVE_FOREIGN);
            foreignKey(out, remove.key());
        } else {
            throw new IllegalArgumentException("unknown change " + change);
        }
    }

    private static Frame decode(byte[] bytes, int offset, int length, long end) throws IOException {
        DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(bytes, offset, length));
        long sequence = in.readLong();
        int count = in.readInt();
        if (count < 0 || count > length) {
            throw new IOException("bad change count " + count);
        }
        List<Change> changes = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            changes.add(decodeChange(in));
        }
        if (in.available() != 0) {
            throw new IOException(in.available() + " bytes after the last change");
        }
        return new Frame(sequence, List.copyOf(changes), end);
    }

    private static Change decodeChange(DataInputStream in) throws IOException {
        byte type = in.readByte();
        switch (type) {
            case SET_NAME:
                return new Change.SetName(name(in), digest(in));
            case REMOVE_NAME:
                return new Change.RemoveName(name(in));
            case ADD_IMAGE:
                return new Change.AddImage(image(in));
            case ADD_IMAGE_CHUNKED:
                return new Change.AddImage(image(in).withChunks(digest(in)));
            case REMOVE_IMAGE:
                return new Change.RemoveImage(digest(in));
            case HOLD_CHANGED:
                return new Change.HoldChanged(in.readUTF(), digest(in), in.readBoolean());
            case DROP_IMAGE:
                return new Change.DropImage(digest(in));
            case SET_FOREIGN: {
                ForeignKey key = foreignKey(in);
                int length = in.readInt();
                if (length < 0 || length > in.available()) {
                    throw new IOException("bad descriptor length " + length);
                }
                return new Change.SetForeign(key, JSON.readTree(in.readNBytes(length)));
            }
            case REMOVE_FOREIGN:
                return new Change.RemoveForeign(foreignKey(in));
            default:
                throw new IOException("unknown change type " + type);
        }
    }

    private static void foreignKey(DataOutputStream out, ForeignKey key) throws IOException {
        out.writeUTF(key.repository());
        out.writeUTF(key.reference());
    }

    private static ForeignKey foreignKey(DataInputStream in) throws IOException {
        return new ForeignKey(in.readUTF(), in.readUTF());
    }

    private static void name(DataOutputStream out, ImageName name) throws IOException {
        out.writeUTF(name.repository());
        out.writeUTF(name.tag());
    }

    private static ImageName name(DataInputStream in) throws IOException {
        return new ImageName(in.readUTF(), in.readUTF());
    }

    /** An image's binary record, as an AddImage frame holds it; the catalog cache uses it too. */
    static void image(DataOutputStream out, StoredImage image) throws IOException {
        digest(out, image.layer());
        out.writeLong(image.size());
        out.writeUTF(image.format().id());
        out.writeLong(image.virtualSize());
        out.writeInt(image.clusterSize());
        out.writeBoolean(image.backing().isPresent());
        if (image.backing().isPresent()) {
            digest(out, image.backing().get());
        }
        out.writeLong(image.created().getEpochSecond());
        out.writeInt(image.created().getNano());
        digest(out, image.manifest());
        out.writeLong(image.manifestSize());
        digest(out, image.config());
    }

    /** {@link #image} followed by the chunk index digest, if any: the catalog cache's record. */
    static void imageAndChunks(DataOutputStream out, StoredImage image) throws IOException {
        image(out, image);
        out.writeBoolean(image.chunks().isPresent());
        if (image.chunks().isPresent()) {
            digest(out, image.chunks().get());
        }
    }

    static StoredImage imageAndChunks(DataInputStream in) throws IOException {
        StoredImage image = image(in);
        return in.readBoolean() ? image.withChunks(digest(in)) : image;
    }

    static StoredImage image(DataInputStream in) throws IOException {
        Digest layer = digest(in);
        long size = in.readLong();
        ImageFormat format = ImageFormat.ofId(in.readUTF());
        long virtualSize = in.readLong();
        int clusterSize = in.readInt();
        Optional<Digest> backing = in.readBoolean() ? Optional.of(digest(in)) : Optional.empty();
        Instant created = Instant.ofEpochSecond(in.readLong(), in.readInt());
        Digest manifest = digest(in);
        long manifestSize = in.readLong();
        return new StoredImage(layer, size, format, virtualSize, clusterSize, backing, created, manifest, manifestSize,
                digest(in));
    }

    private static void digest(DataOutputStream out, Digest digest) throws IOException {
        out.write(java.util.HexFormat.of().parseHex(digest.hex()));
    }

    private static Digest digest(DataInputStream in) throws IOException {
        byte[] raw = new byte[32];
        in.readFully(raw);
        return new Digest(java.util.HexFormat.of().formatHex(raw));
    }

    private static byte[] readAt(FileChannel in, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (in.read(buffer, position + buffer.position()) < 0) {
                throw new EOFException("the journal shrank while it was read");
            }
        }
        return buffer.array();
    }

    private static void write(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        int start = buffer.position();
        while (buffer.hasRemaining()) {
            channel.write(buffer, position + buffer.position() - start);
        }
    }
}
