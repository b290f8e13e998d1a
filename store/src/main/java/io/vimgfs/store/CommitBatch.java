package io.vimgfs.store;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The blobs one group commit puts into {@code blobs/}: the only way a request's {@link Plan}
 * writes a blob. Every blob it installs is durable (layers fsynced, vimgfs's own config and
 * manifest queued in {@link MetadataBlobs}), remembered in order so a failed request or frame
 * deletes exactly what it created, and covered by one fsync of {@code blobs/} before the frame.
 * One instance serves every commit of a store, under the store lock.
 *
 * <p>Steps it owns, in order: {@link CrashPoint#LAYER_PLACED} (a layer renamed in, sealed),
 * {@link CrashPoint#MANIFEST_WRITTEN} (config and manifest beside it, reached by
 * {@link Admission}), then {@link #syncBlobDir()} just before the journal frame.
 */
final class CommitBatch {
    private final BlobFiles files;
    private final MetadataBlobs metadata;
    private final Consumer<CrashPoint> crashHook;
    /**
     * Blobs the commit under way created (layers, configs, manifests), in order. A change that
     * fails, or a commit whose journal frame is not written (a full disk), deletes its own at
     * once: nothing names them, and GC may not run for a long time.
     */
    @GuardedBy("store lock")
    private final List<Digest> created = new ArrayList<>();
    /** Whether the commit under way renamed blobs into blobs/, which is fsynced once before its frame. */
    @GuardedBy("store lock")
    private boolean blobDirDirty;

    CommitBatch(BlobFiles files, MetadataBlobs metadata, Consumer<CrashPoint> crashHook) {
        this.files = files;
        this.metadata = metadata;
        this.crashHook = crashHook;
    }

    /** Starts a commit: nothing created, nothing to sync. */
    @GuardedBy("store lock")
    void begin() {
        created.clear();
        blobDirDirty = false;
    }

    /** Moves a sealed, checked upload into blobs/ as a layer, with its attributes, durable. */
    @GuardedBy("store lock")
    void installLayer(Upload upload, Digest digest, BlobAttributes attributes) throws IOException {
        install(upload, digest, Optional.of(attributes));
    }

    /** Moves a sealed upload of foreign content (a container image's layer or config) into blobs/, durable. */
    @GuardedBy("store lock")
    void installBlob(Upload upload, Digest digest) throws IOException {
        install(upload, digest, Optional.empty());
    }

    private void install(Upload upload, Digest digest, Optional<BlobAttributes> attributes) throws IOException {
        boolean newBlob = !files.exists(digest);
        upload.verifySealed(); // the bytes published are the bytes hashed
        upload.sync(); // content that was stored when staged, and lost its image since
        files.install(upload.file(), digest, attributes);
        if (newBlob) {
            created.add(digest);
        }
        blobDirDirty = true;
        crashHook.accept(CrashPoint.LAYER_PLACED);
    }

    /**
     * Writes a small blob unless it is there. One that is not {@code durable} now is fsynced
     * before index.json names it ({@link MetadataBlobs#syncQueued}).
     */
    @GuardedBy("store lock")
    Digest writeBlob(byte[] content, boolean durable) throws IOException {
        Digest digest = Digest.of(BlobFiles.sha256(content));
        if (!files.exists(digest)) {
            files.writeBlob(content, durable);
            created.add(digest);
            if (!durable) {
                metadata.unsynced(digest);
            }
        }
        blobDirDirty = true;
        return digest;
    }

    /** Where the blobs of the next request start, for {@link #undoSince}. */
    @GuardedBy("store lock")
    int mark() {
        return created.size();
    }

    @GuardedBy("store lock")
    boolean createdAny() {
        return !created.isEmpty();
    }

    /** Deletes the blobs created since {@code mark}; a failure to delete is added to the cause. */
    @GuardedBy("store lock")
    void undoSince(int mark, Exception cause) {
        List<Digest> orphans = created.subList(mark, created.size());
        for (Digest digest : orphans) {
            try {
                files.delete(digest);
            } catch (IOException | RuntimeException e) {
                cause.addSuppressed(e); // left for gc, which finds it unreferenced
            }
        }
        orphans.clear();
    }

    /** Fsyncs blobs/ once for every blob the frame will name, if any was renamed in. */
    @GuardedBy("store lock")
    void syncBlobDir() throws IOException {
        if (blobDirDirty) {
            files.syncBlobDir();
            blobDirDirty = false;
        }
    }
}
