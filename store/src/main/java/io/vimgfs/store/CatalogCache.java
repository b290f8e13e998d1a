package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.zip.CRC32C;

/**
 * A binary copy of the catalog that one index.json describes, in {@code .vimgfs/catalog.cache},
 * so that opening a store of 10,000 images reads a compact file instead of parsing 6 MB of JSON
 * in a JVM that has not warmed up (most of a mount's start).
 *
 * <p>It is a cache, never the truth: it names the exact bytes of the index.json it was made from
 * (their length and CRC32C) and carries a checksum of itself, and it is used only when both
 * match; anything else (another tool rewrote index.json, a crash tore the cache, an older
 * format) falls back to parsing index.json. So it is written without fsync, after index.json is
 * in place, and losing it costs one slower open.
 */
final class CatalogCache {
    static final String FILE = "catalog.cache";
    private static final long MAGIC = 0x56494d4743415432L; // "VIMGCAT2": images carry their chunk index
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a matching cache holds: the catalog and the journal sequence its index.json includes. */
    record Loaded(Catalog catalog, long generation) {
    }

    private static final System.Logger LOG = System.getLogger(CatalogCache.class.getName());

    private CatalogCache() {
    }

    /**
     * Writes the store's cache after an index write, without the lock: the cache is keyed by the
     * index's bytes, so one a later index overtakes is merely not used. A failure only makes the
     * next open slower, so it is logged, not thrown.
     */
    static void writeQuietly(BlobFiles files, byte[] index, Catalog catalog, long sequence, Consumer<CrashPoint> crashHook) {
        try {
            write(files.workDir().resolve(FILE), index, catalog, sequence, crashHook);
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, () -> "store " + files.root() + ": no catalog cache (" + e.getMessage()
                    + "); the next open parses index.json");
        }
    }

    /**
     * Writes the cache of {@code catalog} as {@code index} (the bytes just renamed to index.json)
     * describes it; temporary file and rename, no fsync. Failures are the caller's to log.
     */
    static void write(Path file, byte[] index, Catalog catalog, long generation, Consumer<CrashPoint> crashHook)
            throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + catalog.images().size() * 180
                + catalog.names().size() * 48);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeLong(MAGIC);
            out.writeInt(index.length);
            out.writeInt(crc(index, index.length));
            out.writeLong(generation);
            Map<Digest, Integer> position = new HashMap<>();
            out.writeInt(catalog.images().size());
            for (StoredImage image : catalog.images()) {
                position.put(image.layer(), position.size());
                Journal.imageAndChunks(out, image); // the journal's record of an image
            }
            out.writeInt(catalog.names().size());
            for (Map.Entry<ImageName, Digest> name : catalog.names().entrySet()) {
                out.writeUTF(name.getKey().toString());
                out.writeInt(position.get(name.getValue()));
            }
            out.writeInt(catalog.foreign().size());
            for (JsonNode descriptor : catalog.foreign()) {
                byte[] json = JSON.writeValueAsBytes(descriptor);
                out.writeInt(json.length);
                out.write(json);
            }
        }
        byte[] body = bytes.toByteArray();
        ByteBuffer whole = ByteBuffer.allocate(body.length + Integer.BYTES).put(body).putInt(crc(body, body.length));
        // unique: two processes that opened the store at once may both write one
        Path temporary = file.resolveSibling(FILE + "." + java.util.UUID.randomUUID() + ".tmp");
        try {
            Files.write(temporary, whole.array());
            crashHook.accept(CrashPoint.CACHE_STAGED);
            Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(temporary); // a full disk: no cache this time
            throw e;
        }
    }

    /** The catalog of the cache at {@code file}, if it was made from exactly {@code index}; else empty. */
    static Optional<Loaded> read(Path file, byte[] index) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            return Optional.empty(); // none yet (NoSuchFileException), or unreadable: parse index.json
        }
        if (bytes.length < 28 || ByteBuffer.wrap(bytes, bytes.length - Integer.BYTES, Integer.BYTES).getInt()
                != crc(bytes, bytes.length - Integer.BYTES)) {
            return Optional.empty(); // torn, or not ours
        }
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes, 0, bytes.length - Integer.BYTES))) {
            if (in.readLong() != MAGIC || in.readInt() != index.length || in.readInt() != crc(index, index.length)) {
                return Optional.empty(); // made from another index.json
            }
            long generation = in.readLong();
            int imageCount = in.readInt();
            List<StoredImage> images = new ArrayList<>(imageCount);
            for (int i = 0; i < imageCount; i++) {
                images.add(Journal.imageAndChunks(in));
            }
            int nameCount = in.readInt();
            Map<ImageName, Digest> names = new HashMap<>(nameCount * 4 / 3 + 1);
            for (int i = 0; i < nameCount; i++) {
                names.put(ImageName.parseExisting(in.readUTF()), images.get(in.readInt()).layer());
            }
            int foreignCount = in.readInt();
            List<JsonNode> foreign = new ArrayList<>(foreignCount);
            for (int i = 0; i < foreignCount; i++) {
                foreign.add(JSON.readTree(in.readNBytes(in.readInt())));
            }
            return Optional.of(new Loaded(Catalog.of(images, names, foreign), generation));
        } catch (IOException | RuntimeException e) { // InvalidNameException is an IOException
            return Optional.empty(); // a checksum that matched by chance, or a bug: index.json is the truth
        }
    }

    private static int crc(byte[] bytes, int length) {
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, length);
        return (int) crc.getValue();
    }
}
