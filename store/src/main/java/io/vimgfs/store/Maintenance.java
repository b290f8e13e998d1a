package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * The store-wide decisions about what stays and what goes: garbage collection, collection of
 * blobs that were open when their image went, prune, holds made and released, and the sealing
 * pass ({@link Repair} is fsck's). Each runs under the store lock (through {@link Snapshots#write}) over the parts that
 * own the state: {@link GroupCommit} for catalog changes, {@link IndexWriter} so that blobs are
 * deleted only once index.json no longer names them, {@link GarbageCollector} for the files.
 */
final class Maintenance {
    private static final System.Logger LOG = System.getLogger(Maintenance.class.getName());

    private final BlobFiles files;
    private final Snapshots snapshots;
    private final GroupCommit commits;
    private final IndexWriter indexWriter;
    private final GarbageCollector collector;
    private final Retention retention;
    private final SealStamp sealStamp;
    private final Holds holds;
    private final LastUse lastUse;
    private final StoreOptions options;

    Maintenance(BlobFiles files, Snapshots snapshots, GroupCommit commits, IndexWriter indexWriter, GarbageCollector collector,
            Retention retention, SealStamp sealStamp, Holds holds, LastUse lastUse, StoreOptions options) {
        this.files = files;
        this.snapshots = snapshots;
        this.commits = commits;
        this.indexWriter = indexWriter;
        this.collector = collector;
        this.retention = retention;
        this.sealStamp = sealStamp;
        this.holds = holds;
        this.lastUse = lastUse;
        this.options = options;
    }

    /** See {@link ImageStore#collectGarbage}. */
    GcReport collectGarbage(boolean dryRun) throws IOException {
        if (dryRun) { // changes nothing, so a read-only store answers it too (vimgfs status asks)
            return snapshots.read(() -> collectNow(true));
        }
        return snapshots.write("collect garbage", () -> {
            String sealed = sealStamp.before();
            GcReport report = collectNow(dryRun);
            sealStamp.moveOn(sealed);
            sealStamp.persist();
            return report;
        });
    }

    /** Collects under the lock the caller holds (fsck's repair ends with it). */
    @GuardedBy("store lock")
    GcReport collectNow(boolean dryRun) throws IOException {
        Catalog catalog = snapshots.current().catalog();
        Catalog pruned = catalog.keptBy(retention.at(catalog)).withoutUnkept();
        List<GcReport.Removal> images = new ArrayList<>();
        for (StoredImage image : pruned.dropped()) {
            images.add(new GcReport.Removal(files.blob(image.layer()), image.size(),
                    "image " + image.layer() + " has no name and nothing keeps it"));
        }
        if (!dryRun && !pruned.dropped().isEmpty()) {
            commits.dropUnkept("collect garbage");
        }
        if (!dryRun) {
            indexWriter.writeNow(); // GC deletes only what the index on disk no longer names
        }
        GcReport rest = collector.collect(dryRun ? pruned : snapshots.current().catalog(), dryRun);
        List<GcReport.Removal> removals = new ArrayList<>(images);
        Set<Path> listed = new HashSet<>();
        images.forEach(r -> listed.add(r.file()));
        rest.removals().stream().filter(r -> !listed.contains(r.file())).forEach(removals::add);
        return new GcReport(dryRun, removals, rest.kept());
    }

    /** See {@link ImageStore#collectIfUnused}. */
    boolean collectIfUnused(Digest digest) throws IOException {
        return snapshots.write("collect an unused blob", () -> {
            boolean had = files.exists(digest);
            Catalog now = snapshots.current().catalog();
            if (now.image(digest).isPresent() && now.namesOf(digest).isEmpty()) {
                commits.dropUnkept("collect an unused image", List.of(digest)); // kept while open: gone once closed
            }
            indexWriter.writeNow();
            return collector.collectIfUnused(snapshots.current().catalog(), digest) || (had && !files.exists(digest));
        });
    }

    /** See {@link ImageStore#collectClosed}. */
    int collectClosed() throws IOException {
        Catalog now = snapshots.current().catalog();
        if (!collector.keptAny() && !now.hasNameless()) {
            return 0;
        }
        int before = now.images().size();
        if (now.hasNameless()) {
            commits.dropUnkept("collect closed images");
        }
        int dropped = before - snapshots.current().catalog().images().size();
        return dropped + snapshots.write("collect closed blobs", () -> collector.collectClosed(snapshots.current().catalog()));
    }

    /** Removes staging files whose writer is gone (done at every mount). */
    List<GcReport.Removal> removeStaleStaging() throws IOException {
        return snapshots.write("remove stale staging files", () -> {
            List<GcReport.Removal> stale = collector.staleWorkFiles();
            for (GcReport.Removal removal : stale) {
                Files.deleteIfExists(removal.file());
            }
            return stale;
        });
    }

    /**
     * Brings the blobs of a store written by an older vimgfs (or copied without attributes) up to
     * date: immutable, mode 0444, layers with their {@code user.vimgfs.*} xattrs; skipped while
     * {@link SealStamp} says nothing changed. Returns how many blobs it changed.
     */
    int sealBlobs() throws IOException {
        return snapshots.write("seal its blobs", () -> sealStamp.sealAll(BlobAttributes.ofLayers(snapshots.current().catalog())));
    }

    /** See {@link ImageStore#prune}. */
    PruneReport prune(PrunePolicy policy, boolean dryRun) throws IOException {
        StoreLock.Section<PruneReport> run = () -> {
            Catalog catalog = snapshots.current().catalog();
            Retention.View view = retention.at(catalog);
            List<PruneReport.Decision> decisions = Retention.unchecked(() -> new PruneChoice(catalog, view, policy,
                    lastUse.all(), options.clock().instant(), Files.getFileStore(files.root())).decide());
            PruneReport report = new PruneReport(dryRun, decisions);
            if (!dryRun && !report.removed().isEmpty()) {
                List<ImageName> names = report.removed().stream().flatMap(i -> i.names().stream()).toList();
                List<Digest> chosen = report.removed().stream().map(ImageInfo::digest).toList();
                commits.change("prune", (c, b) -> c.changesTo(c.keptBy(view).withoutNames(names).withoutUnkept(chosen)));
                report.decisions().stream().filter(PruneReport.Decision::remove)
                        .forEach(d -> LOG.log(System.Logger.Level.INFO, "prune: " + d.line(false)));
            }
            return report;
        };
        return dryRun ? snapshots.read(run) : snapshots.write("prune", run);
    }

    /** Why each image stays (empty for one the next gc deletes). */
    Map<Digest, List<KeepReason>> keepReasons() throws IOException {
        Catalog catalog = snapshots.current().catalog();
        Retention.View view = retention.at(catalog);
        return Retention.unchecked(() -> {
            Map<Digest, List<KeepReason>> reasons = new TreeMap<>();
            for (StoredImage image : catalog.images()) {
                reasons.put(image.layer(), view.reasons(catalog, image.layer()));
            }
            return reasons;
        });
    }

    List<Hold> holds() throws IOException {
        return holds.all();
    }

    /** Each hold and the images it keeps now (an overlay directory is scanned for this). */
    Map<Hold, List<Digest>> heldNow() throws IOException {
        Retention.View view = retention.at(snapshots.current().catalog());
        return Retention.unchecked(view::keptByHold);
    }

    /** See {@link ImageStore#hold}. */
    Hold hold(String reference, String why) throws IOException {
        return snapshots.write("hold an image", () -> holds.holdImage(snapshots.current().catalog().resolve(reference).digest(),
                reference, why));
    }

    /** See {@link ImageStore#holdOverlays}. */
    Hold holdOverlays(Path directory, String why) throws IOException {
        Path absolute = directory.toAbsolutePath().normalize();
        if (!Files.isDirectory(absolute)) {
            throw new NoSuchFileException(absolute.toString(), null, "no such directory to hold the overlays of");
        }
        return snapshots.write("hold a directory of overlays", () -> holds.holdOverlays(absolute, why));
    }

    /** See {@link ImageStore#release}: the hold goes, then what only it kept. */
    void release(String reference) throws IOException {
        snapshots.write("end a hold", () -> {
            Optional<Digest> meant = Optional.empty();
            try {
                meant = Optional.of(snapshots.current().catalog().resolve(reference).digest());
            } catch (ImageNotFoundException e) {
                // the held image may be gone already (a hold made by an older vimgfs): match the hold itself
            }
            holds.releaseImage(reference, meant);
            return commits.dropUnkept("end a hold");
        });
    }

    /** See {@link ImageStore#releaseOverlays}. */
    void releaseOverlays(Path directory) throws IOException {
        Path absolute = directory.toAbsolutePath().normalize();
        snapshots.write("end a hold", () -> {
            holds.releaseOverlays(absolute);
            return commits.dropUnkept("end a hold");
        });
    }
}
