package io.vimgfs.store;

import io.vimgfs.store.format.FormatProbe;
import io.vimgfs.store.format.ProbeResult;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Decides what an upload becomes (SPEC §4, §6), for vimgfs's own images and for artifacts placed
 * byte for byte (pull, push): first without the lock, {@link #stage} seals and hashes it, makes
 * new content durable, checks a pinned digest, and probes its format and backing; then under
 * the lock, {@link #admit} checks it against the catalog it will join and installs it through the
 * {@link CommitBatch}.
 *
 * <p>Steps, in order: {@link CrashPoint#STAGED} (written, not fsynced), {@link CrashPoint#STAGED_SYNCED}
 * (durable, not in blobs/), then the batch's {@link CrashPoint#LAYER_PLACED} and
 * {@link CrashPoint#MANIFEST_WRITTEN}. Nothing here names anything: the journal frame does.
 */
final class Admission {
    /** An upload hashed, made durable and checked, ready to be admitted under the lock. */
    record Staged(Upload upload, Reference reference, Digest digest, long size, ProbeResult probe,
            Optional<Digest> backing) {
        Staged probed(ProbeResult result) {
            return new Staged(upload, reference, digest, size, result, backing);
        }
    }

    /**
     * A manifest and config from elsewhere, stored exactly as given, the image they describe, and
     * the chunk index blob when the manifest names one.
     */
    record Described(StoredImage image, byte[] manifest, byte[] config, Optional<byte[]> chunks) {
    }

    private final MetadataBlobs metadata;
    private final Clock clock;
    private final Consumer<CrashPoint> crashHook;
    /** Mountpoints of the store a backing file may name an image through ({@link ImagePaths}). */
    private final Set<Path> mountRoots;

    Admission(MetadataBlobs metadata, StoreOptions options) {
        this.metadata = metadata;
        this.clock = options.clock();
        this.crashHook = options.crashHook();
        this.mountRoots = options.mountRoots();
    }

    /** Seals the upload, checks a pinned digest, and probes content {@code catalog} does not hold yet. */
    Staged stage(Upload upload, Reference reference, Catalog catalog) throws IOException {
        crashHook.accept(CrashPoint.STAGED);
        Digest digest = upload.seal(n -> { });
        Optional<StoredImage> known = catalog.image(digest);
        if (known.isEmpty()) {
            upload.sync(); // new bytes: durable before any lock is taken; a name for stored content skips it
        }
        crashHook.accept(CrashPoint.STAGED_SYNCED);
        long size = upload.size();
        if (reference.pin().isPresent() && !reference.pin().get().equals(digest)) {
            throw new DigestMismatchException(reference.pin().get(), digest);
        }
        ProbeResult probe = known.isPresent() ? null : probe(upload.channel(), size);
        Optional<Digest> backing = known.isPresent() ? known.get().backing() : backingDigest(probe);
        return new Staged(upload, reference, digest, size, probe, backing);
    }

    /** Stages an artifact's layer and checks that its manifest and config describe it truly. */
    Staged stage(Upload layer, Described described, Reference reference, Catalog catalog) throws IOException {
        Digest configDigest = Digest.of(BlobFiles.sha256(described.config()));
        if (!described.image().config().equals(configDigest)) {
            throw new DigestMismatchException(described.image().config(), configDigest);
        }
        checkChunks(described);
        Staged staged = stage(layer, reference, catalog);
        if (!staged.digest().equals(described.image().layer()) || staged.size() != described.image().size()) {
            throw new DigestMismatchException(described.image().layer(), staged.digest());
        }
        checkDescribed(described.image(), staged);
        return staged;
    }

    /** The changes that give the image the name, adding the image first if the catalog lacks it. */
    static List<Change> named(Catalog catalog, ImageName name, StoredImage image) throws InvalidNameException {
        catalog.checkNewName(name);
        List<Change> changes = new java.util.ArrayList<>();
        if (catalog.image(image.layer()).isEmpty()) {
            changes.add(new Change.AddImage(image));
        }
        ForeignKey foreign = new ForeignKey(name.repository(), name.tag());
        if (catalog.foreign(foreign).filter(d -> !ForeignKey.diskOf(d).equals(Optional.of(image.layer()))).isPresent()) {
            changes.add(new Change.RemoveForeign(foreign)); // the tag named pushed OCI content: now it names the disk
        }
        changes.add(new Change.SetName(name, image.layer()));
        return changes;
    }

    /**
     * Under the lock, before the change is made: the stored image for staged content, moving its
     * layer into blobs/ and writing its manifest if it is new, through the batch. With
     * {@code described}, the manifest and config are the artifact's, fsynced now (the journal
     * could not rebuild them after a power cut); without, vimgfs's own.
     */
    @GuardedBy("store lock")
    StoredImage admit(Catalog catalog, Staged staged, Optional<Described> described, CommitBatch batch) throws IOException {
        Optional<Digest> backing = staged.backing();
        if (backing.isPresent() && catalog.image(backing.get()).isEmpty()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.MISSING_BACKING,
                    "backing image " + backing.get() + " is not in the store; " + (described.isPresent() ? "pull" : "add")
                            + " the base image first");
        }
        Optional<StoredImage> known = catalog.image(staged.digest());
        if (known.isPresent()) {
            return known.get();
        }
        // Known content can lose its image before we hold the lock: then it is new again.
        ProbeResult probe = staged.probe() != null ? staged.probe() : probe(staged.upload().channel(), staged.size());
        if (described.isPresent() && staged.probe() == null) {
            checkDescribed(described.get().image(), staged.probed(probe));
        }
        if (backing.isPresent()) {
            checkBackingFormat(probe, catalog.image(backing.get()).orElseThrow());
        }
        batch.installLayer(staged.upload(), staged.digest(),
                new BlobAttributes(staged.digest(), probe.format(), probe.virtualSize(), backing));
        StoredImage image;
        if (described.isPresent()) {
            if (described.get().chunks().isPresent()) {
                batch.writeBlob(described.get().chunks().get(), true);
            }
            batch.writeBlob(described.get().config(), true);
            batch.writeBlob(described.get().manifest(), true);
            image = described.get().image();
        } else {
            image = metadata.write(staged.digest(), staged.size(), probe, backing, clock.instant(), batch);
        }
        crashHook.accept(CrashPoint.MANIFEST_WRITTEN);
        return image;
    }

    /** The chunk index given must be the one the manifest names, and shaped for its layer. */
    private static void checkChunks(Described described) throws IOException {
        Optional<Digest> named = described.image().chunks();
        if (named.isPresent() != described.chunks().isPresent()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.CORRUPT, named.isPresent()
                    ? "the manifest names chunk index " + named.get() + ", but none was given"
                    : "a chunk index was given, but the manifest names none");
        }
        if (named.isPresent()) {
            Digest given = Digest.of(BlobFiles.sha256(described.chunks().get()));
            if (!given.equals(named.get())) {
                throw new DigestMismatchException(named.get(), given);
            }
            try {
                ChunkIndex.parse(described.chunks().get(), described.image().size());
            } catch (StoreDamagedException e) {
                throw new ImageRejectedException(ImageRejectedException.Reason.CORRUPT, "chunk index " + named.get()
                        + ": " + e.getMessage());
            }
        }
    }

    /** A manifest that lies about its layer would make listings and QEMU disagree: refuse it. */
    private static void checkDescribed(StoredImage described, Staged staged) throws ImageRejectedException {
        if (staged.probe() == null) {
            return; // the content is already stored, probed when it was placed; its image is reused
        }
        ProbeResult probe = staged.probe();
        if (probe.format() != described.format() || probe.virtualSize() != described.virtualSize()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.CORRUPT, "the manifest says "
                    + described.format() + " of virtual size " + described.virtualSize() + ", but the layer is "
                    + probe.format() + " of virtual size " + probe.virtualSize());
        }
        if (!described.backing().equals(staged.backing())) {
            throw new ImageRejectedException(ImageRejectedException.Reason.FORBIDDEN_BACKING, "the config names backing "
                    + described.backing().map(Digest::toString).orElse("none") + ", but the layer's backing file is "
                    + staged.backing().map(Digest::toString).orElse("none"));
        }
    }

    /**
     * An overlay's backing format must be its base's stored format: QEMU opens the base with that
     * driver instead of probing it, so {@code vmdk} on a raw base holding descriptor text would
     * read the files the text names. An overlay without a backing format is allowed: QEMU then
     * probes the base, which is safe only because the base passed {@link FormatProbe#probe}'s rule
     * (every format QEMU could probe it as was checked), and its name, a digest, never ends in
     * {@code .dmg}, the one probe that looks at the name.
     */
    private static void checkBackingFormat(ProbeResult probe, StoredImage base) throws ImageRejectedException {
        Optional<String> named = probe.backingFormat();
        String stored = base.format().qemuDriver();
        if (named.isPresent() && !named.get().equals(stored)) {
            throw new ImageRejectedException(ImageRejectedException.Reason.FORBIDDEN_BACKING,
                    "the backing format '" + InvalidNameException.printable(named.get()) + "' is not the stored format"
                            + " of base " + base.layer() + " (" + stored + "): QEMU would read the base as another"
                            + " format; rebase the overlay with 'qemu-img rebase -u -F " + stored + "'");
        }
    }

    private static ProbeResult probe(FileChannel channel, long size) throws IOException {
        if (size == 0) {
            throw new ImageRejectedException(ImageRejectedException.Reason.EMPTY, "the file is empty: an image needs at least one byte");
        }
        return FormatProbe.probe(channel);
    }

    /** The digest a backing file name refers to, if it is one of the forms SPEC §6 allows. */
    private Optional<Digest> backingDigest(ProbeResult probe) throws ImageRejectedException {
        if (probe.backingFile().isEmpty()) {
            return Optional.empty();
        }
        String backing = probe.backingFile().get();
        if (Digest.isHex64(backing)) {
            return Optional.of(new Digest(backing));
        }
        for (Path root : mountRoots) {
            Optional<Digest> viaMount = ImagePaths.digestUnder(root, backing);
            if (viaMount.isPresent()) {
                return viaMount;
            }
        }
        throw new ImageRejectedException(ImageRejectedException.Reason.FORBIDDEN_BACKING,
                "backing file '" + InvalidNameException.printable(backing) + "' is outside the store: a backing file must be"
                        + " a stored image's bare digest (<64 hex>) or " + ImagePaths.BACKING_FORM);
    }
}
