package io.vimgfs.store;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * A store of VM disk images in an OCI image layout (SPEC §7): the one entry point to it. This
 * class only opens and wires the parts and delegates each operation to the one that owns it:
 * {@link Snapshots} (the current catalog, read without a lock; catching up before any write),
 * {@link Placement} and {@link Admission} (what an upload becomes), {@link GroupCommit} and its
 * {@link CommitBatch} (every change, one journal frame and fsync per batch), {@link IndexWriter}
 * and {@link MetadataBlobs} (index.json caught up, the journal compacted, drops swept),
 * {@link Maintenance} and {@link Repair} (gc, prune, holds, sealing, fsck), {@link Retention}
 * (what keeps images), {@link MountRecords} and {@link StoreDirectory} (the directory as the
 * rest of vimgfs sees it).
 * Blobs are durable in {@code blobs/} before the journal names them, and a blob is deleted only
 * once the index on disk no longer names it, so a crash leaves at most orphans, which GC removes.
 * The lock order is on {@link StoreLock}.
 */
public final class ImageStore implements Closeable {
    private final BlobFiles files;
    private final StoreLock lock;
    private final Journal journal;
    private final Snapshots snapshots;
    private final LastUse lastUse;
    private final MountRecords mountRecords;
    private final IndexWriter indexWriter;
    private final GroupCommit commits;
    private final Maintenance maintenance;
    private final Repair repair;
    private final Placement placement;
    private final Consumer<CrashPoint> crashHook;
    private final ForeignContent foreign;

    private ImageStore(BlobFiles files, StoreOptions options, StoreLock lock, Journal journal) {
        this.files = files;
        this.crashHook = options.crashHook();
        this.lock = lock;
        this.journal = journal;
        GarbageCollector collector = new GarbageCollector(files, options.crashHook(), options.events(), options.clock());
        SealStamp sealStamp = new SealStamp(files, options.crashHook());
        MetadataBlobs metadata = new MetadataBlobs(files);
        Holds holds = new Holds(files.workDir(), options.automaticOverlays(), options.clock(), options.crashHook());
        this.snapshots = new Snapshots(files, journal, lock, metadata, options.crashHook());
        this.lastUse = new LastUse(files.workDir(), options.clock(), options.crashHook());
        this.mountRecords = directory().mounts();
        Retention retention = new Retention(files, holds, mountRecords, options.mountRoots());
        this.indexWriter = new IndexWriter(files, journal, snapshots, metadata, collector, sealStamp, options);
        this.commits = new GroupCommit(snapshots, journal, new CommitBatch(files, metadata, options.crashHook()), retention,
                sealStamp, indexWriter, options);
        this.maintenance = new Maintenance(files, snapshots, commits, indexWriter, collector, retention, sealStamp, holds,
                lastUse, options);
        this.repair = new Repair(files, journal, snapshots, indexWriter, maintenance);
        this.placement = new Placement(this, new Admission(metadata, options), commits);
        this.foreign = new ForeignContent(commits, files);
    }

    public static ImageStore open(Path root) throws IOException {
        return open(root, StoreOptions.defaults());
    }

    /**
     * Opens the store at {@code root}, creating it when the directory is absent or empty. A store
     * on a read-only filesystem opens read-only: it takes no lock (no one can write to it) and
     * every change fails with {@link StoreReadOnlyException}. So does one whose filesystem, still
     * mounted rw, refuses the writes of opening it with EROFS (an ext4 aborted after an error).
     */
    public static ImageStore open(Path root, StoreOptions options) throws IOException {
        Path absolute = root.toAbsolutePath().normalize();
        BlobFiles files = new BlobFiles(absolute);
        files.refuseForeign();
        if (Files.isDirectory(absolute) && Files.getFileStore(absolute).isReadOnly()) {
            return openReadOnly(files, options, StoreLock.readOnly(absolute));
        }
        try {
            return openWritable(files, options);
        } catch (FileSystemException e) {
            if (!StoreReadOnlyException.isWriteRefused(e) || !Files.exists(files.layoutFile())) {
                throw e;
            }
            return openReadOnly(files, options, StoreLock.writesRefused(absolute, e));
        }
    }

    private static ImageStore openReadOnly(BlobFiles files, StoreOptions options, StoreLock lock) throws IOException {
        files.checkLayout();
        ImageStore store = new ImageStore(files, options, lock, Journal.readOnly(files.workDir().resolve(Journal.FILE)));
        store.snapshots.reloadWhole();
        return store;
    }

    private static ImageStore openWritable(BlobFiles files, StoreOptions options) throws IOException {
        files.createDirectories(options.audience());
        StoreLock lock = StoreLock.open(files.workDir().resolve("lock"), files.root());
        Journal[] journal = new Journal[1];
        try {
            return lock.exclusive("open it", () -> {
                journal[0] = Journal.open(files.workDir().resolve(Journal.FILE));
                files.initialiseLayout();
                ImageStore store = new ImageStore(files, options, lock, journal[0]);
                store.snapshots.reloadWhole();
                store.indexWriter.recoverAtOpen();
                return store;
            });
        } catch (IOException | RuntimeException e) {
            if (journal[0] != null) {
                journal[0].close();
            }
            lock.close();
            throw e;
        }
    }

    public Path root() {
        return files.root();
    }

    /** The store's directory as the rest of vimgfs may see it: work files, mount records, staging. */
    public StoreDirectory directory() {
        return new StoreDirectory(files);
    }

    /** Increases whenever the catalog changes, here or (after {@link #refresh}) in another process. */
    public long generation() {
        return snapshots.current().generation();
    }

    Catalog catalog() {
        return snapshots.current().catalog();
    }

    ForeignContent foreign() {
        return foreign;
    }

    /** Catches up with what other processes committed (two stats when nothing changed); returns whether the catalog changed. */
    public boolean refresh() throws IOException {
        if (!snapshots.changedOnDisk()) {
            return false;
        }
        return lock.consistent(() -> {
            long before = generation();
            snapshots.catchUp();
            if (snapshots.current().indexBehind() && journal.writable()) {
                indexWriter.schedule(); // another process committed; if it died before rewriting, this one will
            }
            return generation() != before;
        });
    }

    /** Every image, names included, in digest order. */
    public List<ImageInfo> list() {
        Catalog catalog = catalog();
        return catalog.images().stream().map(catalog::info).toList();
    }

    /** Every name and the image it refers to, in name order. */
    public NavigableMap<ImageName, Digest> names() {
        return catalog().names();
    }

    public Optional<ImageInfo> image(Digest digest) {
        Catalog catalog = catalog();
        return catalog.image(digest).map(catalog::info);
    }

    public Optional<ImageInfo> image(ImageName name) {
        Catalog catalog = catalog();
        return catalog.digestOf(name).flatMap(catalog::image).map(catalog::info);
    }

    /** The image a user means ({@link Catalog#resolve}): a name, {@code sha256:<hex>}, or a unique hex prefix. */
    public ImageInfo resolve(String reference) throws StoreException {
        return catalog().resolve(reference);
    }

    /** The stored name a reference means, if it means a name rather than a digest: {@code rm} untags it. */
    public Optional<ImageName> nameIn(String reference) {
        return catalog().nameIn(reference);
    }

    /** Opens an image's bytes for reading; the channel stays readable after the image is removed. */
    public FileChannel openImage(Digest digest) throws IOException {
        try {
            return FileChannel.open(files.blob(digest), StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new ImageNotFoundException(digest.toString());
        }
    }

    /** Where an image's bytes live, for stat-like questions and the mount's links; never write to it. */
    public Path imagePath(Digest digest) {
        return files.blob(digest);
    }

    public StoreStats stats() throws IOException {
        return StoreStats.of(Files.getFileStore(files.root()), catalog());
    }

    /** Starts an upload into the staging area; {@link #place} turns it into an image. */
    public Upload beginUpload() throws IOException {
        lock.requireWritable(Placement.ADD);
        return Upload.create(files.newStagingPath());
    }

    /** Opens, or resumes, the ranged download of a blob into staging ({@link PartialDownload#open}). */
    public PartialDownload resumeDownload(Digest digest, long size, long rangeBytes) throws IOException {
        lock.requireWritable(Placement.ADD);
        return PartialDownload.open(files, digest, size, rangeBytes, crashHook);
    }

    /** Imports a file under a name, hashing while it copies; runs of zeros stay holes. */
    public ImageInfo importFile(Path source, Reference reference, LongConsumer progress) throws IOException {
        return placement.importFile(source, reference, progress);
    }

    public ImageInfo importStream(InputStream in, Reference reference, LongConsumer progress) throws IOException {
        return placement.importStream(in, reference, progress);
    }

    /** One file of a batch import and the name to give it. */
    public record ImportItem(Path file, Reference reference) { }

    /** Imports many files with one commit per 1,000: all of a chunk is placed or none. A base must come before its overlays. */
    public List<ImageInfo> importAll(List<ImportItem> items, LongConsumer progress) throws IOException {
        return placement.importAll(items, progress);
    }

    /** Hashes, checks and places an upload under the name, consuming it ({@link Placement#place}). */
    public ImageInfo place(Upload upload, Reference reference) throws IOException {
        return placement.place(upload, reference);
    }

    /** A stored image exactly as the layout holds it: what {@code vimgfs push} sends byte for byte. */
    public record Artifact(byte[] manifest, byte[] config, Digest layer, long layerSize, String layerMediaType,
            Optional<byte[]> chunks) { }

    /** The manifest, config and layer of a stored image, for sending it elsewhere unchanged. */
    public Artifact artifact(Digest layer) throws IOException {
        StoredImage image = catalog().image(layer).orElseThrow(() -> new ImageNotFoundException(layer.toString()));
        return new Artifact(files.read(image.manifest()), files.read(image.config()), layer, image.size(),
                image.format().mediaType(), image.chunks().isPresent() ? Optional.of(files.read(image.chunks().get()))
                        : Optional.empty());
    }

    /** Places a vimgfs artifact byte for byte, consuming the layer ({@link Placement#placeArtifact}). */
    public ImageInfo placeArtifact(Upload layer, byte[] manifest, byte[] config, Optional<byte[]> chunks, Reference reference)
            throws IOException {
        return placement.placeArtifact(layer, manifest, config, chunks, reference);
    }

    /** Gives an existing image (by name or digest) another name, moving the name if it is taken. */
    public ImageInfo tag(String source, ImageName newName) throws IOException {
        Catalog after = commits.change("name an image", NameChanges.tag(source, newName));
        return after.info(after.image(after.digestOf(newName).orElseThrow()).orElseThrow());
    }

    /** Removes a name; the image goes with its last name unless something still keeps it. */
    public void untag(ImageName name) throws IOException {
        commits.change("remove a name", NameChanges.untag(name));
    }

    /** Removes an image and all its names; returns whether it is gone (an overlay's base stays, nameless). */
    public boolean removeImage(Digest digest) throws IOException {
        return commits.change("remove an image", NameChanges.removeImage(digest)).image(digest).isEmpty();
    }

    /** Brings index.json up to date with the journal now; also done in the background about once a second. */
    public void syncIndex() throws IOException {
        indexWriter.syncIndex();
    }

    /** Deletes what nothing keeps: nameless images no {@link KeepReason} holds, then unreferenced blobs and staging files. */
    public GcReport collectGarbage(boolean dryRun) throws IOException {
        return maintenance.collectGarbage(dryRun);
    }

    /** Deletes a blob that lost its image while open, once nothing references or opens it; the mount calls it on close. */
    public boolean collectIfUnused(Digest digest) throws IOException {
        return maintenance.collectIfUnused(digest);
    }

    /** Deletes the blobs kept because they were open when their image went, once closed; the mount calls it every second. */
    public int collectClosed() throws IOException {
        return maintenance.collectClosed();
    }

    /** Removes staging files whose writer is gone (done at every mount). */
    public List<GcReport.Removal> removeStaleStaging() throws IOException {
        return maintenance.removeStaleStaging();
    }

    /** Seals blobs an older vimgfs (or a copy) left unsealed ({@link Maintenance#sealBlobs}); returns how many changed. */
    public int sealBlobs() throws IOException {
        return maintenance.sealBlobs();
    }

    /** Which images some process has open, and who (layers only: gc's own scan keeps any open blob). */
    public Map<Digest, List<ImageHolder>> openImages() throws IOException {
        return OpenImages.of(files).scan(catalog()::contains);
    }

    /** Every hold: those made with {@code hold add}, then the automatic overlay directories that exist. */
    public List<Hold> holds() throws IOException {
        return maintenance.holds();
    }

    /** Holds the image a reference means, so it stays without names; holding it again replaces the reason. */
    public Hold hold(String reference, String why) throws IOException {
        return maintenance.hold(reference, why);
    }

    /** Holds every image a qcow2 under the directory uses (recursively, whole chains). */
    public Hold holdOverlays(Path directory, String why) throws IOException {
        return maintenance.holdOverlays(directory, why);
    }

    /** Ends the holds on the image a reference means; its images go now if nothing else keeps them. */
    public void release(String reference) throws IOException {
        maintenance.release(reference);
    }

    /** Ends the hold on a directory of overlays (an automatic one too); what only it kept goes now. */
    public void releaseOverlays(Path directory) throws IOException {
        maintenance.releaseOverlays(directory);
    }

    /** Each hold and the images it keeps now (an overlay directory is scanned for this). */
    public Map<Hold, List<Digest>> heldNow() throws IOException {
        return maintenance.heldNow();
    }

    /** Why each image stays (empty for one the next gc deletes), for {@code ls --all}. */
    public Map<Digest, List<KeepReason>> keepReasons() throws IOException {
        return maintenance.keepReasons();
    }

    /** Removes the images the policy chooses (or, dry, says which), and why each goes or stays. */
    public PruneReport prune(PrunePolicy policy, boolean dryRun) throws IOException {
        return maintenance.prune(policy, dryRun);
    }

    /** Notes that an image was looked up or opened through a mount: a map write, no I/O. */
    public void recordUse(Digest digest) {
        lastUse.record(digest);
    }

    /** Writes the recorded uses to {@code .vimgfs/last-use.json} if a minute passed since the last write (or {@code force}). */
    public boolean persistUses(boolean force) throws IOException {
        return snapshots.write("record when images were used", () -> lastUse.persist(force));
    }

    /** Total bytes an fsck hashes, for a progress bar. */
    public long fsckBytes() throws IOException {
        return new StoreChecker(files).bytesToHash();
    }

    /** Re-hashes every blob, checks every reference; {@code repair} drops what points at damage ({@link Repair}). */
    public FsckReport fsck(boolean repair, LongConsumer progress) throws IOException {
        return this.repair.fsck(repair, progress);
    }

    /** Records a live mount of the store at {@code mountpoint} by this process, until closed ({@link MountRecords#claim}). */
    public Closeable claimMount(Path mountpoint) throws IOException {
        lock.requireWritable("mount it");
        return mountRecords.claim(mountpoint);
    }

    /** The live mounts of this store. */
    public List<MountRecords.MountRecord> liveMounts() throws IOException {
        return mountRecords.live();
    }

    /** Rewrites index.json if it is behind (a mount's unmount, a CLI call's end), then lets go of the store. */
    @Override
    public void close() throws IOException {
        try {
            indexWriter.close();
        } finally {
            try {
                journal.close();
            } finally {
                lock.close();
            }
        }
    }
}
