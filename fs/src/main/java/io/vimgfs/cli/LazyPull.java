package io.vimgfs.cli;

import io.vimgfs.nbd.LazyExports;
import io.vimgfs.nbd.NbdClient;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import io.vimgfs.store.registry.LazyPuller;
import io.vimgfs.store.registry.Puller;
import io.vimgfs.store.registry.RegistryReference;
import io.vimgfs.store.registry.TransferProgress;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * {@code pull --lazy} on the command line: checks that a mount will serve the disk, records the
 * pull ({@link LazyPuller}), and waits until the mount answers for it over NBD, so that
 * {@code vimgfs overlay} works as soon as this returns. Prints the export.
 */
final class LazyPull {
    /** How long the mount may take to look at the store's lazy pulls (it looks every 500 ms). */
    static final Duration TAKEN_UP_WITHIN = Duration.ofSeconds(10);

    private LazyPull() {
    }

    /**
     * Empty when the pull is recorded and served; the image when it was stored already; and when
     * the image cannot be pulled lazily, a whole pull's result after a warning.
     */
    static Optional<ImageInfo> start(ImageStore store, RegistryOptions registry, RegistryReference source, Reference target,
            Puller.Choice choice, TransferProgress progress, PrintWriter out) throws IOException {
        LazyPuller.Outcome outcome = new LazyPuller(store, registry.client(), registry.credentials())
                .pull(source, target, choice, () -> {
                    if (store.liveMounts().isEmpty()) {
                        throw new IOException("no mount of this store is running to serve the disk while it downloads:"
                                + " mount it (vimgfs MOUNTPOINT) or pull without --lazy");
                    }
                });
        if (outcome instanceof LazyPuller.Outcome.Stored stored) {
            return Optional.of(stored.image());
        }
        if (outcome instanceof LazyPuller.Outcome.NotLazy not) {
            progress.warn(source + " cannot be pulled lazily: " + not.why() + "; pulling it whole");
            return Optional.of(new Puller(store, registry.client(), registry.credentials(), progress, Puller.Ranges.defaults())
                    .pull(source, target, choice));
        }
        LazyPuller.Outcome.Recorded recorded = (LazyPuller.Outcome.Recorded) outcome;
        Path socket = LazyExports.socketOf(store.root());
        String export = recorded.pull().layer().toString();
        long deadline = System.nanoTime() + TAKEN_UP_WITHIN.toNanos();
        while (!NbdClient.serves(socket, export)) {
            if (System.nanoTime() > deadline) {
                throw new IOException("the lazy pull is recorded, but the mount has not begun serving it within "
                        + TAKEN_UP_WITHIN.toSeconds() + " s (see the mount's log); it goes on when the mount takes it up");
            }
            sleep();
        }
        if (!registry.quiet) {
            out.printf("%s %s lazy: nbd+unix:///%s?socket=%s%n", target.name(), recorded.pull().layer(), export, socket);
        }
        return Optional.empty();
    }

    private static void sleep() throws IOException {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted");
        }
    }
}
