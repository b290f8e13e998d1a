package io.vimgfs.store;

import java.nio.file.Path;
import java.util.List;

/** What garbage collection removed, or in a dry run would remove, and why. */
public record GcReport(boolean dryRun, List<Removal> removals) {

    /** One file and the reason it is garbage. */
    public record Removal(Path file, long bytes, String reason) {
    }

    public GcReport {
        removals = List.copyOf(removals);
    }

    public long bytes() {
        return removals.stream().mapToLong(Removal::bytes).sum();
    }
}
