package io.vimgfs.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The one rule of what is alive. An image stays while any of these hold: it has a name; a stored
 * image names it as backing; a hold names it; a qcow2 under a held overlay directory uses it
 * anywhere in its chain; some other process has it open. Catalog changes, garbage collection, prune,
 * fsck and {@code hold ls} all ask here, and get the reasons as {@link KeepReason} values.
 *
 * <p>A {@link View} looks at one moment: the holds as given, and — only when first asked about
 * an image the catalog alone would drop — one scan of the overlay directories and one of
 * {@code /proc}, so an {@code rm} of an image that keeps its names costs nothing extra.
 */
final class Retention {
    /**
     * How long one scan of /proc answers "is it open?" for ordinary commits (rm of a name). A scan
     * costs about 5 ms here, and a burst of removals would pay it once each; an opener this misses
     * loses only the image's place in the catalog (by-digest/, ls --all), never its bytes: the
     * sweep that deletes blobs scans again. A reader closed within the window keeps its image until
     * the mount's next look or gc, both of which scan afresh.
     */
    private static final long OPEN_SCAN_REUSE_NANOS = 250_000_000L;

    private final BlobFiles files;
    private final OverlayScanner overlays;
    private final Holds holds;
    private final MountRecords mounts;
    /** This process's own mountpoints of the store. */
    private final Set<Path> ownMounts;
    private volatile Map<Digest, List<ImageHolder>> lastOpenScan;
    private volatile long lastOpenScanAt;

    Retention(BlobFiles files, Holds holds, MountRecords mounts, Set<Path> ownMounts) {
        this.files = files;
        this.overlays = new OverlayScanner(files.blobDir());
        this.holds = holds;
        this.mounts = mounts;
        this.ownMounts = Set.copyOf(ownMounts);
    }

    /** What keeps images now: the holds as they are, overlay directories and /proc scanned afresh when asked. */
    View at(Catalog catalog) throws IOException {
        return new View(catalog, holds.all(), this::mountRoots, false);
    }

    /** The same for the removals of ordinary commits, which may share a /proc scan of the last quarter second. */
    View forCommit(Catalog catalog) throws IOException {
        return new View(catalog, holds.all(), this::mountRoots, true);
    }

    /**
     * Runs a question that asks a view (which scans the filesystem lazily, under a
     * {@link Catalog.Keeper} that cannot throw), turning its unchecked I/O failures back into IOException.
     */
    static <T> T unchecked(StoreLock.Section<T> question) throws IOException {
        try {
            return question.run();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** This process's mountpoints and those the live mount records name: paths under them are never statted. */
    private Collection<Path> mountRoots() {
        try {
            Set<Path> roots = new HashSet<>(ownMounts);
            roots.addAll(mounts.roots());
            return roots;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** What keeps images at one moment; asks the filesystem at most once for each kind of reason. */
    final class View implements Catalog.Keeper {
        private final Catalog catalog;
        private final List<Hold> holds;
        private final Supplier<Collection<Path>> mountRoots;
        private Map<Digest, List<Path>> overlayUses;
        private Map<Digest, List<ImageHolder>> open;
        private final boolean reuseRecentScan;

        private View(Catalog catalog, List<Hold> holds, Supplier<Collection<Path>> mountRoots, boolean reuseRecentScan) {
            this.reuseRecentScan = reuseRecentScan;
            this.catalog = catalog;
            this.holds = List.copyOf(holds);
            this.mountRoots = mountRoots;
        }

        /** Whether something outside the catalog keeps the image (what a nameless image needs). */
        @Override
        public boolean keeps(Digest digest) {
            return !outside(digest).isEmpty();
        }

        /** Every reason the image stays, in the catalog's eyes and outside; empty means it goes. */
        List<KeepReason> reasons(Catalog in, Digest digest) {
            List<KeepReason> reasons = new ArrayList<>();
            List<ImageName> names = in.namesOf(digest);
            if (!names.isEmpty()) {
                reasons.add(new KeepReason.Named(names));
            }
            for (Digest overlay : in.overlaysOf(digest)) {
                reasons.add(new KeepReason.BackingOf(overlay));
            }
            reasons.addAll(outside(digest));
            return reasons;
        }

        /** The reasons outside the catalog: holds, overlay directories, open descriptors. */
        List<KeepReason> outside(Digest digest) {
            List<KeepReason> reasons = new ArrayList<>();
            for (Hold hold : holds) {
                if (hold instanceof Hold.Image image && image.digest().equals(digest)) {
                    reasons.add(new KeepReason.Held(hold.why()));
                }
            }
            for (Path overlay : overlayUses().getOrDefault(digest, List.of())) {
                reasons.add(new KeepReason.OverlayUses(overlay));
            }
            for (ImageHolder holder : open().getOrDefault(digest, List.of())) {
                reasons.add(new KeepReason.OpenBy(holder.pid(), holder.command()));
            }
            return reasons;
        }

        /** The images each hold keeps now: its own image, or what its directory's overlays use. */
        Map<Hold, List<Digest>> keptByHold() {
            Map<Hold, List<Digest>> kept = new java.util.LinkedHashMap<>();
            for (Hold hold : holds) {
                if (hold instanceof Hold.Image image) {
                    kept.put(hold, catalog.image(image.digest()).isPresent() ? List.of(image.digest()) : List.of());
                } else if (hold instanceof Hold.Overlays dir) {
                    List<Digest> used = new ArrayList<>();
                    overlayUses().forEach((digest, paths) -> {
                        if (paths.stream().anyMatch(p -> p.startsWith(dir.directory()))) {
                            used.add(digest);
                        }
                    });
                    kept.put(hold, used);
                }
            }
            return kept;
        }

        synchronized Map<Digest, List<Path>> overlayUses() {
            if (overlayUses == null) {
                List<Path> directories = holds.stream().filter(Hold.Overlays.class::isInstance)
                        .map(h -> ((Hold.Overlays) h).directory()).toList();
                try {
                    overlayUses = directories.isEmpty() ? Map.of()
                            : overlays.scan(directories, mountRoots.get(), this::digestOfName);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            return overlayUses;
        }

        synchronized Map<Digest, List<ImageHolder>> open() {
            if (open == null) {
                try {
                    // This process's own descriptors (an upload's channel, a data=fuse reader's handle)
                    // are not a reason: the blob outlives them by itself and goes when they close.
                    long self = ProcessHandle.current().pid();
                    open = new HashMap<>();
                    recentOpenScan().forEach((digest, holders) -> {
                        List<ImageHolder> others = holders.stream().filter(h -> h.pid() != self).toList();
                        if (!others.isEmpty()) {
                            open.put(digest, others);
                        }
                    });
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            return open;
        }

        private Map<Digest, List<ImageHolder>> recentOpenScan() throws IOException {
            long now = System.nanoTime();
            Map<Digest, List<ImageHolder>> scan = lastOpenScan;
            if (!reuseRecentScan || scan == null || now - lastOpenScanAt > OPEN_SCAN_REUSE_NANOS) {
                scan = OpenImages.of(files).scan();
                lastOpenScan = scan;
                lastOpenScanAt = now;
            }
            return scan;
        }

        private Optional<Digest> digestOfName(String name) {
            try {
                return catalog.digestOf(ImageName.parseExisting(name));
            } catch (InvalidNameException e) {
                return Optional.empty();
            }
        }
    }
}
