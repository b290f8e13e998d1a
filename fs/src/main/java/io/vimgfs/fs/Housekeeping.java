package io.vimgfs.fs;

import io.vimgfs.store.ImageStore;
import io.vimgfs.store.PrunePolicy;
import io.vimgfs.store.PruneReport;
import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * What the mount does on its timer, off every FUSE path: writes the images' last uses (the store
 * writes at most once a minute), and with {@code -o prune_at=H%,prune_to=L%} prunes the least
 * recently used images when the store's filesystem is H% used, down to L%, logging each decision
 * in the words {@code prune --dry-run} prints.
 */
final class Housekeeping implements Runnable {
    private static final System.Logger LOG = System.getLogger(Housekeeping.class.getName());

    private final ImageStore store;
    private final Optional<MountRequest.Watermarks> watermarks;

    Housekeeping(ImageStore store, Optional<MountRequest.Watermarks> watermarks) {
        this.store = store;
        this.watermarks = watermarks;
    }

    @Override
    public void run() {
        try {
            store.persistUses(false);
            if (watermarks.isPresent()) {
                pruneIfFull(watermarks.get());
            }
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "housekeeping of " + store.root() + " failed: " + e.getMessage());
        }
    }

    /** Writes the last uses now (at unmount). */
    void flush() {
        try {
            store.persistUses(true);
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot record when images were last used: " + e.getMessage());
        }
    }

    private void pruneIfFull(MountRequest.Watermarks marks) throws IOException {
        FileStore filesystem = Files.getFileStore(store.root());
        long total = filesystem.getTotalSpace();
        if (total <= 0) {
            return;
        }
        long usedPercent = 100 - filesystem.getUsableSpace() * 100 / total;
        if (usedPercent < marks.high()) {
            return;
        }
        LOG.log(System.Logger.Level.INFO, "prune: the store's filesystem is " + usedPercent + "% used (prune_at="
                + marks.high() + "%): removing least recently used images until " + marks.low() + "%");
        PruneReport report = store.prune(new PrunePolicy(OptionalInt.empty(), Optional.empty(),
                Optional.of(new PrunePolicy.FreeTarget(100 - marks.low(), true))), false);
        report.decisions().stream().filter(d -> !d.remove())
                .forEach(d -> LOG.log(System.Logger.Level.INFO, "prune: " + d.line(false)));
        Metrics.process().pruned("mount", report.removed().stream().mapToLong(i -> i.size()).sum());
        if (report.removed().isEmpty()) {
            LOG.log(System.Logger.Level.WARNING, "prune: nothing could be removed; every image is kept (see above)");
        }
    }
}
