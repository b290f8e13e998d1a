package io.vimgfs.store;

import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * What {@code vimgfs prune} may choose; the parts combine with AND. Nothing a {@link KeepReason}
 * other than a name keeps is ever chosen.
 *
 * @param keepRecent keep the N most recently placed images of each repository
 * @param unusedFor  choose only images not opened or looked up through a mount for this long
 * @param untilFree  choose the least recently used only until the store's filesystem has this free
 */
public record PrunePolicy(OptionalInt keepRecent, Optional<Duration> unusedFor, Optional<FreeTarget> untilFree) {

    /** Free space wanted: a number of bytes, or a percentage of the filesystem. */
    public record FreeTarget(long value, boolean percent) {
        public FreeTarget {
            if (value < 0 || (percent && value > 100)) {
                throw new IllegalArgumentException("free space must be 0..100% or a number of bytes");
            }
        }

        long bytes(long total) {
            return percent ? total / 100 * value : value;
        }

        @Override
        public String toString() {
            return percent ? value + "%" : value + " bytes";
        }
    }

    public boolean choosesNothingSpecific() {
        return keepRecent.isEmpty() && unusedFor.isEmpty() && untilFree.isEmpty();
    }
}
