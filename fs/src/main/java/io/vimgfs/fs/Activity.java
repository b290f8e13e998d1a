package io.vimgfs.fs;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vimgfs.store.StoreDirectory;
import io.vimgfs.store.registry.TransferProgress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * What the store's command-line verbs are doing or just did — pulls and pushes with their bytes
 * so far, gc and prune runs with what they freed — as one small JSON file per run under
 * {@code STORE/.vimgfs/activity/}. {@code vimgfs status} reads the files (with or without a
 * daemon) to show transfers in flight and their rate; each mount counts the finished ones into
 * its metrics. The files are a view, not state: they are written whole and renamed (never
 * fsynced), a torn or unreadable one is skipped, and a crash loses at most a number in a
 * dashboard. A finished run's file stays {@link #KEEP_MILLIS} so every mount sees it, then the
 * next run or mount deletes it; so does a run whose process died.
 */
public final class Activity implements TransferProgress, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Activity.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    /** How long a finished run stays listed: longer than any mount's look at the directory. */
    public static final long KEEP_MILLIS = 10 * 60 * 1000;
    /** A transfer rewrites its file at most this often. */
    private static final long UPDATE_MILLIS = 500;

    /** Where a run is at; {@code RUNNING} until it ends one way or the other. */
    public enum State { RUNNING, OK, FAILED }

    /**
     * One run as its file says it.
     *
     * @param verb        pull, push, gc or prune
     * @param subject     what it works on (the source or destination reference; empty for gc)
     * @param bytes       bytes moved so far (pull, push) or freed (gc, prune)
     * @param totalBytes  bytes the transfer will move, or -1 while unknown
     * @param files       files (gc) or images (prune) removed
     * @param error       why a failed run failed
     */
    public record Run(String id, String verb, String subject, long pid, String command, long startedMillis,
            long updatedMillis, State state, long bytes, long totalBytes, long files, String error) {
        /** Running, by its own word, but its process is gone: killed or crashed. */
        public boolean orphaned() {
            return state == State.RUNNING && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) == Boolean.FALSE;
        }

        /** Bytes per second over the run so far. */
        public double rate() {
            long millis = updatedMillis - startedMillis;
            return millis <= 0 ? 0 : bytes * 1000.0 / millis;
        }
    }

    private final Path file;
    private Run run;
    private long lastWrite;

    private Activity(Path file, Run run) {
        this.file = file;
        this.run = run;
    }

    /** The directory of a store's runs. */
    static Path directory(Path storeRoot) {
        return StoreDirectory.of(storeRoot).workFile("activity");
    }

    /** Starts recording a run of {@code verb} on {@code subject} by this process. */
    public static Activity start(Path storeRoot, String verb, String subject) {
        long now = System.currentTimeMillis();
        ProcessHandle self = ProcessHandle.current();
        String id = self.pid() + "-" + now + "-" + verb;
        String command = self.info().commandLine().orElse(verb);
        Activity activity = new Activity(directory(storeRoot).resolve(id + ".json"),
                new Run(id, verb, subject, self.pid(), command, now, now, State.RUNNING, 0, -1, 0, null));
        removeExpired(storeRoot);
        activity.write();
        return activity;
    }

    /** Records a run that is over as soon as it starts being told: a gc or a prune. */
    public static void finished(Path storeRoot, String verb, String subject, long files, long bytes) {
        try (Activity activity = start(storeRoot, verb, subject)) {
            activity.succeeded(files, bytes);
        }
    }

    /** Passes every step on to {@code next} (a progress bar) as well as recording it. */
    public TransferProgress alongside(TransferProgress next) {
        return new TransferProgress() {
            @Override
            public void begin(String task, long totalBytes) {
                Activity.this.begin(task, totalBytes);
                next.begin(task, totalBytes);
            }

            @Override
            public void advance(long bytes) {
                Activity.this.advance(bytes);
                next.advance(bytes);
            }

            @Override
            public void warn(String line) {
                next.warn(line);
            }
        };
    }

    @Override
    public synchronized void begin(String task, long totalBytes) {
        long total = run.totalBytes() < 0 ? totalBytes : totalBytes < 0 ? run.totalBytes() : run.totalBytes() + totalBytes;
        update(run.state(), run.bytes(), total, run.files(), null, true);
    }

    @Override
    public synchronized void advance(long bytes) {
        update(run.state(), run.bytes() + bytes, run.totalBytes(), run.files(), null, false);
    }

    /** The run ended well; {@code bytes} and {@code files} replace what was counted when given (gc, prune). */
    public synchronized void succeeded(long files, long bytes) {
        update(State.OK, bytes < 0 ? run.bytes() : bytes, run.totalBytes(), files, null, true);
    }

    /** The run failed; {@code why} is the line the command printed. */
    public synchronized void failed(String why) {
        update(State.FAILED, run.bytes(), run.totalBytes(), run.files(), why, true);
    }

    /** A run closed without a word of how it ended failed (an exception on its way out). */
    @Override
    public synchronized void close() {
        if (run.state() == State.RUNNING) {
            update(State.FAILED, run.bytes(), run.totalBytes(), run.files(), "ended without finishing", true);
        }
    }

    private void update(State state, long bytes, long total, long files, String error, boolean now) {
        long at = System.currentTimeMillis();
        run = new Run(run.id(), run.verb(), run.subject(), run.pid(), run.command(), run.startedMillis(), at, state, bytes,
                total, files, error);
        if (now || at - lastWrite >= UPDATE_MILLIS) {
            write();
        }
    }

    private void write() {
        lastWrite = System.currentTimeMillis();
        try {
            Files.createDirectories(file.getParent(), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Path temporary = file.resolveSibling("." + file.getFileName() + ".tmp");
            Files.write(temporary, JSON.writeValueAsBytes(run));
            Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            // a read-only store, a full disk: the run goes on, unseen by status and metrics
            LOG.log(System.Logger.Level.DEBUG, () -> "cannot record " + run.verb() + " in " + file + ": " + e.getMessage());
        }
    }

    /** Every run whose file reads whole, oldest first. */
    public static List<Run> read(Path storeRoot) {
        Path dir = directory(storeRoot);
        List<Run> runs = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return runs;
        }
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path entry : entries.filter(p -> p.getFileName().toString().matches("[0-9]+-[0-9]+-[a-z]+\\.json")).toList()) {
                readRun(entry).ifPresent(runs::add);
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, () -> "cannot list " + dir + ": " + e.getMessage());
        }
        runs.sort(Comparator.comparingLong(Run::startedMillis));
        return runs;
    }

    private static Optional<Run> readRun(Path entry) {
        try {
            return Optional.of(JSON.readValue(entry.toFile(), Run.class));
        } catch (IOException | RuntimeException e) {
            return Optional.empty(); // gone meanwhile, or torn by a crash: a number lost, nothing else
        }
    }

    /** Deletes finished runs older than {@link #KEEP_MILLIS}, and runs whose process died that long ago. */
    static void removeExpired(Path storeRoot) {
        long now = System.currentTimeMillis();
        for (Run run : read(storeRoot)) {
            if ((run.state() != State.RUNNING || run.orphaned()) && now - run.updatedMillis() > KEEP_MILLIS) {
                try {
                    Files.deleteIfExists(directory(storeRoot).resolve(run.id() + ".json"));
                } catch (IOException e) {
                    LOG.log(System.Logger.Level.DEBUG, () -> "cannot remove " + run.id() + ": " + e.getMessage());
                }
            }
        }
    }
}
