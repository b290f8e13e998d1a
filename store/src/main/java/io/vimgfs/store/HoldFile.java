package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * The store's holds, in {@code .vimgfs/holds.json} beside (never inside) index.json, so skopeo
 * still reads the layout. Replaced whole ({@link ReplacedFile}: write, fsync, rename, fsync the
 * directory) by callers that hold the store lock, so a crash leaves the old holds or the new; reread whenever the file's identity changes, so a hold
 * made by another process counts at the next question. {@code released} lists the automatic
 * overlay directories a user dropped with {@code hold rm --overlays}.
 */
final class HoldFile {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String FILE = "holds.json";

    /** What the file says. */
    record Contents(List<Hold> holds, Set<Path> released) {
        static final Contents EMPTY = new Contents(List.of(), Set.of());

        Contents {
            holds = List.copyOf(holds);
            released = Set.copyOf(released);
        }
    }

    private record Version(Object fileKey, long modifiedNanos, long size) {
    }

    private static final ReplacedFile.Steps STEPS = new ReplacedFile.Steps(CrashPoint.HOLDS_TORN,
            CrashPoint.HOLDS_WRITTEN, CrashPoint.HOLDS_STAGED, CrashPoint.HOLDS_RENAMED, CrashPoint.HOLDS_SYNCED);

    private final Path file;
    private final ReplacedFile replaced;
    private volatile Version version;
    private volatile Contents contents = Contents.EMPTY;

    HoldFile(Path workDir, Consumer<CrashPoint> crashHook) {
        this.file = workDir.resolve(FILE);
        this.replaced = new ReplacedFile(file, STEPS, crashHook);
    }

    /** The holds as the file says now (reread only if it changed since the last read). */
    Contents read() throws IOException {
        Version now = versionOnDisk();
        if (now == null) {
            version = null;
            contents = Contents.EMPTY;
        } else if (!now.equals(version)) {
            contents = parse(Files.readAllBytes(file));
            version = now;
        }
        return contents;
    }

    /** Replaces the file atomically; the caller holds the store lock. */
    void write(Contents next) throws IOException {
        replaced.replace(render(next));
        version = versionOnDisk();
        contents = next;
    }

    private Version versionOnDisk() throws IOException {
        try {
            BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
            return new Version(a.fileKey(), a.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS), a.size());
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    private Contents parse(byte[] bytes) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (IOException e) {
            throw new StoreDamagedException("store hold file " + file + " is not JSON (" + e.getMessage()
                    + "); fix or remove it: every hold it made is lost with it", e);
        }
        List<Hold> holds = new ArrayList<>();
        for (JsonNode hold : root.path("holds")) {
            String why = hold.path("why").asText("");
            Instant made = Instant.parse(hold.path("made").asText("1970-01-01T00:00:00Z"));
            if (hold.has("image")) {
                try {
                    Digest digest = Digest.parse(hold.path("image").asText());
                    holds.add(new Hold.Image(digest, hold.path("reference").asText(digest.toString()), why, made));
                } catch (InvalidNameException e) {
                    throw new StoreDamagedException("store hold file " + file + " holds a bad digest: " + e.getMessage(), e);
                }
            } else if (hold.has("overlays")) {
                holds.add(new Hold.Overlays(Path.of(hold.path("overlays").asText()), why, made, false));
            }
        }
        Set<Path> released = new TreeSet<>();
        for (JsonNode path : root.path("released")) {
            released.add(Path.of(path.asText()));
        }
        return new Contents(holds, released);
    }

    private static byte[] render(Contents contents) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode holds = root.putArray("holds");
        for (Hold hold : contents.holds()) {
            ObjectNode node = holds.addObject();
            if (hold instanceof Hold.Image image) {
                node.put("image", image.digest().toString());
                node.put("reference", image.reference());
            } else if (hold instanceof Hold.Overlays overlays) {
                node.put("overlays", overlays.directory().toString());
            }
            node.put("why", hold.why());
            node.put("made", hold.made().toString());
        }
        ArrayNode released = root.putArray("released");
        contents.released().stream().sorted().forEach(p -> released.add(p.toString()));
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
    }
}
