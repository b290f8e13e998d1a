package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The holds users made ({@code hold add}, kept in {@link HoldFile}) and the automatic overlay
 * directories that exist (libvirt's default pool), until {@code hold rm --overlays} releases
 * one. Changes replace {@code holds.json} whole under the store lock; what a released hold alone
 * kept is then dropped by the caller, through the group commit.
 */
final class Holds {
    private final HoldFile file;
    private final List<Path> automaticOverlays;
    private final Clock clock;

    Holds(Path workDir, List<Path> automaticOverlays, Clock clock, Consumer<CrashPoint> crashHook) {
        this.file = new HoldFile(workDir, crashHook);
        this.automaticOverlays = List.copyOf(automaticOverlays);
        this.clock = clock;
    }

    /** Every hold: those made with {@code hold add}, then the automatic overlay directories that exist. */
    List<Hold> all() throws IOException {
        HoldFile.Contents contents = file.read();
        List<Hold> all = new ArrayList<>(contents.holds());
        for (Path directory : automaticOverlays) {
            boolean explicit = all.stream().anyMatch(h -> h instanceof Hold.Overlays o && o.directory().equals(directory));
            if (!explicit && !contents.released().contains(directory) && Files.isDirectory(directory)) {
                all.add(new Hold.Overlays(directory, "libvirt's default image directory", Instant.EPOCH, true));
            }
        }
        return all;
    }

    /** Holds the image; holding it again replaces the reason. */
    @GuardedBy("store lock")
    Hold holdImage(Digest digest, String reference, String why) throws IOException {
        Hold hold = new Hold.Image(digest, reference, why, clock.instant());
        HoldFile.Contents contents = file.read();
        List<Hold> holds = new ArrayList<>(contents.holds());
        holds.removeIf(h -> h instanceof Hold.Image image && image.digest().equals(digest));
        holds.add(hold);
        file.write(new HoldFile.Contents(holds, contents.released()));
        return hold;
    }

    /** Holds every image a qcow2 under the (absolute, existing) directory uses. */
    @GuardedBy("store lock")
    Hold holdOverlays(Path directory, String why) throws IOException {
        Hold hold = new Hold.Overlays(directory, why, clock.instant(), false);
        HoldFile.Contents contents = file.read();
        List<Hold> holds = new ArrayList<>(contents.holds());
        holds.removeIf(h -> h instanceof Hold.Overlays o && o.directory().equals(directory));
        holds.add(hold);
        Set<Path> released = new HashSet<>(contents.released());
        released.remove(directory);
        file.write(new HoldFile.Contents(holds, released));
        return hold;
    }

    /**
     * Ends the holds on the image {@code reference} means ({@code meant}, when it is still
     * stored); a hold on an image gone already (made by an older vimgfs) is matched by the
     * reference it was made with or a digest prefix.
     */
    @GuardedBy("store lock")
    void releaseImage(String reference, Optional<Digest> meant) throws IOException {
        HoldFile.Contents contents = file.read();
        String hex = reference.startsWith(Digest.ALGORITHM + ":") ? reference.substring(Digest.ALGORITHM.length() + 1) : reference;
        List<Hold> holds = new ArrayList<>(contents.holds());
        boolean removed = holds.removeIf(h -> h instanceof Hold.Image image && (meant.map(image.digest()::equals)
                .orElse(image.reference().equals(reference) || (hex.length() >= 3 && image.digest().hex().startsWith(hex)))));
        if (!removed) {
            throw new ImageNotFoundException("a hold on " + reference);
        }
        file.write(new HoldFile.Contents(holds, contents.released()));
    }

    /** Ends the hold on an (absolute) directory of overlays, an automatic one too. */
    @GuardedBy("store lock")
    void releaseOverlays(Path directory) throws IOException {
        HoldFile.Contents contents = file.read();
        List<Hold> holds = new ArrayList<>(contents.holds());
        boolean removed = holds.removeIf(h -> h instanceof Hold.Overlays o && o.directory().equals(directory));
        Set<Path> released = new HashSet<>(contents.released());
        if (automaticOverlays.contains(directory)) {
            removed |= released.add(directory);
        }
        if (!removed) {
            throw new NoSuchFileException(directory.toString(), null, "no hold on this directory of overlays");
        }
        file.write(new HoldFile.Contents(holds, released));
    }
}
