package io.vimgfs.store.registry;

import com.fasterxml.jackson.databind.JsonNode;
import io.vimgfs.store.Digest;
import io.vimgfs.store.DigestMismatchException;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.LazyPulls;
import io.vimgfs.store.Reference;
import java.io.IOException;
import java.util.Optional;

/**
 * {@code vimgfs pull --lazy}: everything a lazy pull checks before it returns. The manifest (an
 * index resolved as {@link Puller} does), its config and its chunk index are fetched and
 * verified; the disk's first chunks are fetched, verified and probed ({@link LazyDisk#open});
 * then the pull is recorded in the store ({@link LazyPulls}) for the mount to serve and finish.
 */
public final class LazyPuller {
    /** What became of the request. */
    public sealed interface Outcome {
        /** Recorded: the mount serves the disk by digest and fetches the rest. */
        record Recorded(LazyPulls.Pull pull) implements Outcome { }

        /** The disk was stored already: only the name was added. */
        record Stored(ImageInfo image) implements Outcome { }

        /** The image cannot be pulled lazily (why says so); pull it whole. */
        record NotLazy(String why) implements Outcome { }
    }

    private final ImageStore store;
    private final Puller puller;
    private final boolean tlsVerify;

    public LazyPuller(ImageStore store, RegistryClient.Options options, CredentialLookup credentials) {
        this.store = store;
        this.puller = new Puller(store, options, credentials, TransferProgress.NONE, Puller.Ranges.defaults());
        this.tlsVerify = options.tlsVerify();
    }

    /** A check made once the image is known to be lazily pullable, before anything is fetched for it. */
    @FunctionalInterface
    public interface Precondition {
        void check() throws IOException;
    }

    public Outcome pull(RegistryReference source, Reference name, Puller.Choice choice, Precondition beforeFetching)
            throws IOException {
        String display = source.toString();
        Puller.Resolved resolved = puller.resolve(source, choice);
        if (!resolved.isVimgfsArtifact()) {
            return new Outcome.NotLazy("it is not a vimgfs image (a containerDisk or machine-os disk has no chunk index)");
        }
        JsonNode disk = Puller.diskLayer(resolved.tree(), display);
        Digest layer = Puller.digest(disk, display);
        long size = disk.path("size").asLong(-1);
        if (name.pin().isPresent() && !name.pin().get().equals(layer)) {
            throw new DigestMismatchException(name.pin().get(), layer);
        }
        if (store.image(layer).isPresent()) {
            return new Outcome.Stored(store.tag(layer.toString(), name.name()));
        }
        Optional<byte[]> chunks = Puller.chunkIndex(resolved.client(), source, resolved.tree(), size, display);
        if (chunks.isEmpty()) {
            return new Outcome.NotLazy("its manifest has no chunk index (pushed by a vimgfs before it, or with"
                    + " --no-chunk-index)");
        }
        beforeFetching.check();
        JsonNode configDescriptor = resolved.tree().path("config");
        byte[] config = resolved.client().smallBlob(source.repository(), Puller.digest(configDescriptor, display),
                configDescriptor.path("size").asLong(-1), display);
        Digest configDigest = Digest.of(ResumableBody.sha256(config));
        if (!configDigest.equals(Puller.digest(configDescriptor, display))) {
            throw new DigestMismatchException(Puller.digest(configDescriptor, display), configDigest);
        }
        LazyPulls.Pull pull = new LazyPulls.Pull(display, tlsVerify, name.name(), layer, size, resolved.manifest().bytes(),
                config, chunks.get());
        LazyDisk.open(store, pull, resolved.client(), source.repository(), display).close(); // verified, probed, resumable
        store.directory().lazyPulls().add(pull);
        return new Outcome.Recorded(pull);
    }
}
