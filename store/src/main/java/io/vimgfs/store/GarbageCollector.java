package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Finds and deletes what nothing references: blobs not reachable from index.json (through
 * manifests, configs and backing digests), staging files no live writer holds, and temporary
 * index files. A blob some process has open is never deleted, referenced or not: VMs read blob
 * files directly, so only {@code /proc} knows an image is in use ({@link OpenImages}; one scan
 * per collection, and none when there is nothing to delete). Callers hold the store lock, so no
 * commit is half done while it runs.
 */
final class GarbageCollector {
    private static final System.Logger LOG = System.getLogger(GarbageCollector.class.getName());

    private final BlobFiles files;
    private final Consumer<CrashPoint> crashHook;
    private final Clock clock;
    private final StoreEvents events;

    GarbageCollector(BlobFiles files, Consumer<CrashPoint> crashHook, StoreEvents events, Clock clock) {
        this.events = events;
        this.clock = clock;
        this.files = files;
        this.crashHook = crashHook;
    }

    GcReport collect(Catalog catalog, boolean dryRun) throws IOException {
        Set<Digest> live = mark(catalog);
        List<Digest> unreferenced = new ArrayList<>();
        try (DirectoryStream<Path> blobs = Files.newDirectoryStream(files.blobDir())) {
            for (Path blob : blobs) {
                String name = blob.getFileName().toString();
                if (Digest.isHex64(name) && !live.contains(new Digest(name))) {
                    unreferenced.add(new Digest(name));
                }
            }
        }
        Map<Digest, List<ImageHolder>> open = openAmong(unreferenced);
        List<GcReport.Removal> removals = new ArrayList<>();
        List<GcReport.Kept> kept = new ArrayList<>();
        for (Digest digest : unreferenced) {
            Path blob = files.blob(digest);
            if (open.containsKey(digest)) {
                kept.add(new GcReport.Kept(blob, open.get(digest)));
            } else {
                removals.add(new GcReport.Removal(blob, sizeOf(blob), "not referenced by index.json or any image's backing"));
            }
        }
        removals.addAll(staleWorkFiles());
        if (!dryRun) {
            delete(removals);
        }
        return new GcReport(dryRun, removals, kept);
    }

    /** Blobs a sweep kept because some process had them open: {@link #collectClosed} retries them. */
    private final Set<Digest> keptOpen = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Whether a sweep kept blobs for processes that had them open. */
    boolean keptAny() {
        return !keptOpen.isEmpty();
    }

    /** Deletes the kept blobs whose openers have closed them (one /proc scan); returns how many. */
    int collectClosed(Catalog catalog) throws IOException {
        Set<Digest> live = mark(catalog);
        keptOpen.removeIf(digest -> live.contains(digest) || !files.exists(digest));
        Map<Digest, List<ImageHolder>> open = openAmong(keptOpen);
        List<GcReport.Removal> removals = new ArrayList<>();
        for (Digest digest : List.copyOf(keptOpen)) {
            if (!open.containsKey(digest)) {
                removals.add(new GcReport.Removal(files.blob(digest), 0, "its image lost its last name and was closed"));
                keptOpen.remove(digest);
            }
        }
        delete(removals);
        return removals.size();
    }

    /** Deletes the blobs of images a change dropped, unless the new catalog still reaches them. */
    void sweepDropped(List<StoredImage> dropped, Catalog after) throws IOException {
        if (dropped.isEmpty()) {
            return;
        }
        Set<Digest> candidates = new HashSet<>();
        for (StoredImage image : dropped) {
            candidates.addAll(image.blobs());
        }
        candidates.removeAll(mark(after));
        Map<Digest, List<ImageHolder>> open = openAmong(candidates);
        List<GcReport.Removal> removals = new ArrayList<>();
        for (Digest digest : candidates) {
            if (open.containsKey(digest)) {
                keptOpen.add(digest);
                LOG.log(System.Logger.Level.INFO, "store " + files.root() + ": keeping " + digest + ", its image lost its"
                        + " last name but is open by " + open.get(digest) + "; a later gc deletes it once closed");
            } else {
                removals.add(new GcReport.Removal(files.blob(digest), 0, "its image lost its last name"));
            }
        }
        delete(removals);
    }

    /** Deletes one blob if the catalog no longer reaches it and no process has it open. */
    boolean collectIfUnused(Catalog catalog, Digest digest) throws IOException {
        if (!files.exists(digest) || mark(catalog).contains(digest) || !openAmong(List.of(digest)).isEmpty()) {
            return false;
        }
        delete(List.of(new GcReport.Removal(files.blob(digest), 0, "its image lost its last name and was closed")));
        return true;
    }

    /** The candidates some process has open: one /proc scan, and none when there are no candidates. */
    private Map<Digest, List<ImageHolder>> openAmong(Collection<Digest> candidates) throws IOException {
        if (candidates.isEmpty()) {
            return Map.of();
        }
        Map<Digest, List<ImageHolder>> open = new HashMap<>(OpenImages.of(files).scan());
        open.keySet().retainAll(Set.copyOf(candidates));
        return open;
    }

    /** Staging files whose writer is gone, and temporary index, holds and last-use files a crash left unrenamed. */
    List<GcReport.Removal> staleWorkFiles() throws IOException {
        List<GcReport.Removal> stale = new ArrayList<>();
        try (DirectoryStream<Path> staged = Files.newDirectoryStream(files.stagingDir())) {
            for (Path file : staged) {
                if (PartialDownload.isDownloadFile(file)) {
                    abandonedDownload(file).ifPresent(stale::add);
                } else if (!heldByWriter(file)) {
                    stale.add(new GcReport.Removal(file, sizeOf(file), "staging file left by an interrupted import or upload"));
                }
            }
        }
        try (DirectoryStream<Path> temps = Files.newDirectoryStream(files.workDir(), OciLayout.INDEX_FILE + ".*.tmp")) {
            for (Path file : temps) {
                stale.add(new GcReport.Removal(file, sizeOf(file), "temporary index left by an interrupted commit"));
            }
        }
        try (DirectoryStream<Path> temps = Files.newDirectoryStream(files.workDir(),
                "{" + HoldFile.FILE + ".*.tmp," + LastUse.FILE + ".*.tmp," + CatalogCache.FILE + ".*.tmp," + LazyPulls.PREFIX + "*.tmp}")) {
            for (Path file : temps) {
                stale.add(new GcReport.Removal(file, sizeOf(file), "temporary file left by an interrupted write"));
            }
        }
        return stale;
    }

    /**
     * A file of a resumable download nobody is writing: its range map once the staging file is
     * gone (placed) or a crash left it temporary, else either file once both have been left
     * unwritten for {@link PartialDownload#ABANDONED_AFTER}, so that a pull run again meanwhile resumes.
     */
    private Optional<GcReport.Removal> abandonedDownload(Path file) throws IOException {
        Path data = PartialDownload.dataFileOf(file);
        boolean dataGone = !Files.exists(data);
        if (!dataGone && heldByWriter(data)) {
            return Optional.empty();
        }
        if (dataGone || file.getFileName().toString().endsWith(".tmp")) {
            return Optional.of(new GcReport.Removal(file, sizeOf(file), "range map of a download that is over"));
        }
        Instant cutoff = clock.instant().minus(PartialDownload.ABANDONED_AFTER);
        Path map = data.resolveSibling(data.getFileName().toString().replace(PartialDownload.DATA_SUFFIX,
                PartialDownload.RANGES_SUFFIX));
        if (modified(data).isAfter(cutoff) || modified(map).isAfter(cutoff)) {
            return Optional.empty();
        }
        return Optional.of(new GcReport.Removal(file, sizeOf(file), "partial download left unfinished for more than "
                + PartialDownload.ABANDONED_AFTER.toHours() + " hours"));
    }

    private static Instant modified(Path file) {
        try {
            return Files.getLastModifiedTime(file).toInstant();
        } catch (IOException e) {
            return Instant.EPOCH;
        }
    }

    /** Every blob the catalog reaches. Foreign descriptors are followed through their manifests. */
    Set<Digest> mark(Catalog catalog) throws IOException {
        Set<Digest> live = new HashSet<>();
        for (StoredImage image : catalog.images()) {
            live.addAll(image.blobs());
            image.backing().ifPresent(live::add);
        }
        Deque<Digest> manifests = new ArrayDeque<>();
        for (JsonNode descriptor : catalog.foreign()) {
            manifests.add(OciLayout.digestOf(descriptor));
        }
        while (!manifests.isEmpty()) {
            Digest manifest = manifests.pop();
            if (!live.add(manifest) || !files.exists(manifest)) {
                continue;
            }
            try {
                OciLayout.ManifestRefs refs = OciLayout.references(manifest, files.read(manifest));
                refs.config().ifPresent(live::add);
                live.addAll(refs.layers());
                manifests.addAll(refs.manifests());
            } catch (StoreDamagedException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot follow " + manifest + ": " + e.getMessage());
            }
        }
        return live;
    }

    private void delete(Collection<GcReport.Removal> removals) throws IOException {
        boolean first = true;
        int deleted = 0;
        long bytes = 0;
        try {
            for (GcReport.Removal removal : removals) {
                long size = sizeOf(removal.file());
                files.delete(removal.file());
                deleted++;
                bytes += size;
                if (first) {
                    crashHook.accept(CrashPoint.SWEEPING);
                    first = false;
                }
            }
        } finally {
            if (deleted > 0) {
                events.deleted(deleted, bytes);
            }
        }
    }

    /**
     * A live writer holds a lock on its staging file. In this process that shows as an
     * OverlappingFileLockException; in another, as a failed tryLock.
     */
    private static boolean heldByWriter(Path file) throws IOException {
        if (Upload.isOpenHere(file)) {
            return true; // opening and closing it here would release the writer's lock
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            FileLock lock = channel.tryLock();
            if (lock == null) {
                return true;
            }
            lock.release();
            return false;
        } catch (OverlappingFileLockException e) {
            return true;
        } catch (NoSuchFileException e) {
            return true; // placed or abandoned meanwhile: not ours to delete
        }
    }

    private static long sizeOf(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            return 0;
        }
    }
}
