package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * When each image was last looked up or opened through a mount. Recorded in memory on the
 * lookup path (one map write) and written to {@code .vimgfs/last-use.json} lazily, at most once
 * a minute, by whoever calls {@link #persist} (the mount's timer, never a read); the file merges
 * what every mount of the store saw, latest wins. Replaced whole ({@link ReplacedFile}), so a crash
 * leaves the old file or the new; a damaged one only makes last uses count from placement.
 */
final class LastUse {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String FILE = "last-use.json";
    static final Duration PERSIST_EVERY = Duration.ofMinutes(1);

    private static final ReplacedFile.Steps STEPS = new ReplacedFile.Steps(CrashPoint.LAST_USE_TORN,
            CrashPoint.LAST_USE_WRITTEN, CrashPoint.LAST_USE_STAGED, CrashPoint.LAST_USE_RENAMED, CrashPoint.LAST_USE_SYNCED);

    private final Path file;
    private final ReplacedFile replaced;
    private final Clock clock;
    private final Map<Digest, Instant> unsaved = new ConcurrentHashMap<>();
    private volatile Instant lastPersist = Instant.MIN;

    LastUse(Path workDir, Clock clock, Consumer<CrashPoint> crashHook) {
        this.file = workDir.resolve(FILE);
        this.replaced = new ReplacedFile(file, STEPS, crashHook);
        this.clock = clock;
    }

    void record(Digest digest) {
        unsaved.put(digest, clock.instant());
    }

    /** What the file says merged with what this process saw since. */
    Map<Digest, Instant> all() throws IOException {
        Map<Digest, Instant> uses = read();
        unsaved.forEach((d, t) -> uses.merge(d, t, (a, b) -> a.isAfter(b) ? a : b));
        return uses;
    }

    /** Writes what this process saw, if anything and if a minute passed; the caller holds the store lock. */
    boolean persist(boolean force) throws IOException {
        Instant now = clock.instant();
        if (unsaved.isEmpty() || (!force && lastPersist.plus(PERSIST_EVERY).isAfter(now))) {
            return false;
        }
        Map<Digest, Instant> merged = all();
        unsaved.clear();
        ObjectNode root = JSON.createObjectNode();
        merged.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> root.put(e.getKey().toString(), e.getValue().toString()));
        replaced.replace(JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
        lastPersist = now;
        return true;
    }

    private Map<Digest, Instant> read() throws IOException {
        Map<Digest, Instant> uses = new HashMap<>();
        if (!Files.exists(file)) {
            return uses;
        }
        try {
            JsonNode root = JSON.readTree(Files.readAllBytes(file));
            root.fields().forEachRemaining(e -> {
                try {
                    uses.put(Digest.parse(e.getKey()), Instant.parse(e.getValue().asText()));
                } catch (InvalidNameException | java.time.format.DateTimeParseException ignored) {
                    // a damaged entry only loses one image's last use: it counts from when it was placed
                }
            });
        } catch (IOException e) {
            System.getLogger(LastUse.class.getName()).log(System.Logger.Level.WARNING,
                    file + " is damaged (" + e.getMessage() + "); last uses count from when images were placed");
        }
        return uses;
    }
}
