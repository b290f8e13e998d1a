package io.vimgfs.store;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * What garbage collection removed, or in a dry run would remove, and why; and the garbage it
 * kept because some process has it open (a later gc deletes it once closed).
 */
public record GcReport(boolean dryRun, List<Removal> removals, List<Kept> kept) {

    /** One file and the reason it is garbage. */
    public record Removal(Path file, long bytes, String reason) {
    }

    /** A blob nothing references that stays because these processes have it open. */
    public record Kept(Path file, List<ImageHolder> holders) {
        public Kept {
            holders = List.copyOf(holders);
        }

        /** {@code kept: open by pid N (cmd)}. */
        public String reason() {
            return "kept: open by " + holders.stream().map(ImageHolder::toString).collect(Collectors.joining(", "));
        }
    }

    public GcReport {
        removals = List.copyOf(removals);
        kept = List.copyOf(kept);
    }

    public GcReport(boolean dryRun, List<Removal> removals) {
        this(dryRun, removals, List.of());
    }

    public long bytes() {
        return removals.stream().mapToLong(Removal::bytes).sum();
    }
}
