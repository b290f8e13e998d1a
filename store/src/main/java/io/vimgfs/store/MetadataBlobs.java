package io.vimgfs.store;

import io.vimgfs.store.format.ProbeResult;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The config and manifest blobs vimgfs writes for its own images. They are a function of the
 * fields a journal {@link Change.AddImage} record holds, so a commit writes them without fsync:
 * <ol>
 * <li>{@link #write} builds them from the image's fields and writes them through the
 *     {@link CommitBatch}, remembered here as unsynced;</li>
 * <li>replays of other processes' frames {@link #queue} theirs too (their writer may have died
 *     before it synced them);</li>
 * <li>{@link #syncQueued} fsyncs every one before an index.json names it (index.json is what
 *     other tools trust); a blob whose fsync fails goes back on the queue and the rewrite fails;</li>
 * <li>at open, {@link #restore} rewrites from the journal those a power cut emptied.</li>
 * </ol>
 * Lock order: the queue's monitor is a leaf, taken by the index writer with or without the store lock.
 */
final class MetadataBlobs {
    private static final System.Logger LOG = System.getLogger(MetadataBlobs.class.getName());

    /** The config and manifest vimgfs writes for an image, and the image they make. */
    record Metadata(StoredImage image, byte[] config, byte[] manifest) {
        static Metadata of(Digest layer, long size, ImageFormat format, long virtualSize, int clusterSize,
                Optional<Digest> backing, Instant created) {
            byte[] config = OciLayout.configJson(format, virtualSize, clusterSize, backing, created);
            Digest configDigest = Digest.of(BlobFiles.sha256(config));
            byte[] manifest = OciLayout.manifestJson(configDigest, config.length, format, layer, size, created);
            return new Metadata(new StoredImage(layer, size, format, virtualSize, clusterSize, backing, created,
                    Digest.of(BlobFiles.sha256(manifest)), manifest.length, configDigest), config, manifest);
        }

        static Metadata of(StoredImage image) {
            return of(image.layer(), image.size(), image.format(), image.virtualSize(), image.clusterSize(),
                    image.backing(), image.created());
        }
    }

    private final BlobFiles files;
    /** Config and manifest blobs that may not be fsynced yet; drained under this queue's monitor. */
    private final Queue<Digest> unsynced = new ConcurrentLinkedQueue<>();

    MetadataBlobs(BlobFiles files) {
        this.files = files;
    }

    /** Writes the config and manifest of a new image through the batch, unsynced; returns the image they make. */
    @GuardedBy("store lock")
    StoredImage write(Digest layer, long size, ProbeResult probe, Optional<Digest> backing, Instant created,
            CommitBatch batch) throws IOException {
        Metadata metadata = Metadata.of(layer, size, probe.format(), probe.virtualSize(), probe.clusterSize(), backing, created);
        batch.writeBlob(metadata.config(), false);
        batch.writeBlob(metadata.manifest(), false);
        return metadata.image();
    }

    /** Remembers a blob written without fsync, to be synced before an index names it. */
    void unsynced(Digest digest) {
        unsynced.add(digest);
    }

    /** The config and manifest of the images a frame (maybe another process's) adds: they may be unsynced. */
    void queue(Journal.Frame frame) {
        for (Change change : frame.changes()) {
            if (change instanceof Change.AddImage add) {
                unsynced.add(add.image().config());
                unsynced.add(add.image().manifest());
            }
        }
    }

    /**
     * Fsyncs every queued blob. One that fails goes back on the queue and the failure is thrown,
     * so index.json is not rewritten to name it.
     */
    void syncQueued() throws IOException {
        synchronized (unsynced) { // a blob the index writer took off the queue is durable before any index names it
            for (Digest digest = unsynced.poll(); digest != null; digest = unsynced.poll()) {
                try {
                    files.syncFile(digest);
                } catch (IOException | RuntimeException e) {
                    unsynced.add(digest);
                    throw e;
                }
            }
        }
    }

    /**
     * At open of a writable store: the config and manifest blobs of the images the journal adds
     * past {@code indexSequence} are whole, rewritten from the journal's records where a power cut
     * lost their unsynced bytes (a commit fsyncs only the layer, the directory and its frame). An
     * image whose blobs vimgfs did not write (a pulled artifact, fsynced at its commit) cannot be
     * rebuilt; fsck reports it.
     */
    @GuardedBy("store lock")
    void restore(Journal.Contents journal, Catalog catalog, long indexSequence) throws IOException {
        boolean rewrote = false;
        for (Journal.Frame frame : journal.frames()) {
            if (frame.sequence() <= indexSequence) {
                continue; // in index.json, which names only configs and manifests already fsynced
            }
            for (Change change : frame.changes()) {
                if (change instanceof Change.AddImage add && catalog.image(add.image().layer()).isPresent()) {
                    rewrote |= restore(add.image());
                }
            }
        }
        if (rewrote) {
            files.syncBlobDir();
        }
    }

    private boolean restore(StoredImage image) throws IOException {
        if (whole(image.config()) && whole(image.manifest())) {
            return false;
        }
        Metadata metadata = Metadata.of(image);
        if (!metadata.image().equals(image)) {
            LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": the config or manifest of image " + image.layer()
                    + " is damaged and was not written by this vimgfs; run 'vimgfs fsck'");
            return false;
        }
        for (byte[] blob : List.of(metadata.config(), metadata.manifest())) {
            Digest digest = Digest.of(BlobFiles.sha256(blob));
            if (!whole(digest)) {
                files.delete(digest);
                files.writeBlob(blob, true);
                LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": rewrote blob " + digest
                        + " of image " + image.layer() + " from the journal (a crash lost its unsynced bytes)");
            }
        }
        return true;
    }

    /** Whether the blob holds the bytes its digest names. */
    private boolean whole(Digest digest) throws IOException {
        try {
            return Digest.of(BlobFiles.sha256(files.read(digest))).equals(digest);
        } catch (NoSuchFileException e) {
            return false;
        }
    }
}
