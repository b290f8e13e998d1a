package io.vimgfs.store;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Why an image stays: the values {@link Retention} answers with. {@code gc}, {@code prune
 * --dry-run}, {@code hold ls}, {@code ls --all} and the mount log all print {@link #describe()},
 * so every one of them says the same words.
 */
public sealed interface KeepReason {

    /** The words a user reads: {@code held: golden image}, {@code in use by pid 4242 (qemu-io)}. */
    String describe();

    /** Whether the reason lies outside the catalog (a hold, an overlay directory, a process): prune never overrides it. */
    default boolean protects() {
        return !(this instanceof Named);
    }

    /** The image has these names. */
    record Named(List<ImageName> names) implements KeepReason {
        public Named {
            names = List.copyOf(names);
        }

        @Override
        public String describe() {
            return "named " + names.stream().map(ImageName::toString).collect(Collectors.joining(", "));
        }
    }

    /** A hold names the image ({@code vimgfs hold add REF --why TEXT}). */
    record Held(String why) implements KeepReason {
        @Override
        public String describe() {
            return why.isEmpty() ? "held" : "held: " + why;
        }
    }

    /** A qcow2 under a held overlay directory has the image somewhere in its backing chain. */
    record OverlayUses(Path overlay) implements KeepReason {
        @Override
        public String describe() {
            return "backing of " + overlay;
        }
    }

    /** A stored image names this one as its backing file. */
    record BackingOf(Digest overlay) implements KeepReason {
        @Override
        public String describe() {
            return "backing of stored image " + overlay;
        }
    }

    /** A process has the image's blob open ({@code /proc/PID/fd}). */
    record OpenBy(long pid, String command) implements KeepReason {
        @Override
        public String describe() {
            return "in use by pid " + pid + " (" + command + ")";
        }
    }

    /** An upload or pull is still writing this staging file. */
    record BeingWritten(Path file) implements KeepReason {
        @Override
        public String describe() {
            return "being written (" + file.getFileName() + ")";
        }
    }
}
