package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.vimgfs.store.format.FormatProbe;
import io.vimgfs.store.format.ProbeResult;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.HashSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A store of VM disk images in an OCI image layout (SPEC §7): the one entry point to it.
 *
 * <p>Readers see an immutable {@link Catalog} snapshot and take no lock. Writers take the
 * {@link StoreLock}, catch up with what other processes committed, turn their requests into
 * {@link Change}s, append them to the {@link Journal} with one fsync, and then publish the new
 * snapshot. index.json is rewritten from the catalog in the background, at most about once a
 * second, and at once on close, gc and fsck; then the journal is truncated. Blobs are durable
 * in {@code blobs/} before the journal names them, and a blob is deleted only once the index on
 * disk no longer names it, so a crash leaves at most orphans, which GC removes.
 */
public final class ImageStore implements Closeable {
    private static final System.Logger LOG = System.getLogger(ImageStore.class.getName());
    private static final Pattern DIGEST_PREFIX = Pattern.compile("(?:sha256:)?([0-9a-f]{3,64})");
    private static final Pattern OTHER_DIGEST = Pattern.compile("[a-z0-9]+:[0-9a-fA-F]{32,}");
    private static final int COPY_CHUNK = 1 << 20;
    private static final int BATCH_COMMIT = 1000;
    private static final String ADD = "add an image";
    /** The least time between two background rewrites of index.json while changes flow. */
    private static final long INDEX_INTERVAL_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);

    private final BlobFiles files;
    private final StoreOptions options;
    private final StoreLock lock;
    private final GarbageCollector collector;
    private final Journal journal;
    private final Retention retention;
    private final HoldFile holdFile;
    private final LastUse lastUse;
    /** Images read from manifest and config blobs, so reloading index.json never re-reads them. */
    private final Cache<Digest, StoredImage> imagesByManifest =
            Caffeine.newBuilder().maximumSize(100_000).build();
    private final AtomicLong generation = new AtomicLong();
    private volatile Snapshot current;

    /**
     * A catalog, the version of index.json and of the journal it was read from, the journal
     * sequence the index includes, where the journal's sound frames end, the last sequence the
     * catalog includes, and the {@link #generation()} counter.
     */
    private record Snapshot(Catalog catalog, IndexVersion index, long indexGeneration, Journal.Version journalVersion,
            long journalEnd, long sequence, long generation) {
        boolean indexBehind() {
            return indexGeneration < sequence;
        }
    }

    /** Identifies one index.json file: every commit renames a new file into place. */
    private record IndexVersion(Object fileKey, long modifiedNanos, long size) {
    }

    private ImageStore(BlobFiles files, StoreOptions options, StoreLock lock, Journal journal) {
        this.files = files;
        this.options = options;
        this.lock = lock;
        this.journal = journal;
        this.collector = new GarbageCollector(files, options.crashHook(), options.events());
        this.retention = new Retention(files);
        this.holdFile = new HoldFile(files.workDir(), options.crashHook());
        this.lastUse = new LastUse(files.workDir(), options.clock(), options.crashHook());
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
        refuseForeignDirectory(files);
        if (Files.isDirectory(absolute) && Files.getFileStore(absolute).isReadOnly()) {
            return openReadOnly(files, options, StoreLock.readOnly(absolute));
        }
        try {
            return openWritable(files, options);
        } catch (java.nio.file.FileSystemException e) {
            if (!StoreReadOnlyException.isWriteRefused(e) || !Files.exists(files.layoutFile())) {
                throw e;
            }
            return openReadOnly(files, options, StoreLock.writesRefused(absolute, e));
        }
    }

    private static ImageStore openReadOnly(BlobFiles files, StoreOptions options, StoreLock lock) throws IOException {
        ImageStore store = new ImageStore(files, options, lock, Journal.readOnly(files.workDir().resolve(Journal.FILE)));
        store.checkLayout();
        store.current = store.load();
        return store;
    }

    private static ImageStore openWritable(BlobFiles files, StoreOptions options) throws IOException {
        Path absolute = files.root();
        files.createDirectories(options.audience());
        StoreLock lock = StoreLock.open(files.workDir().resolve("lock"), absolute);
        Journal[] journal = new Journal[1];
        try {
            return lock.exclusive("open it", () -> {
                journal[0] = Journal.open(files.workDir().resolve(Journal.FILE));
                ImageStore store = new ImageStore(files, options, lock, journal[0]);
                store.initialiseLayout();
                store.current = store.load();
                if (journal[0].writable()) { // a read-only store is read as it is; fsck reports what a power cut emptied
                    store.restoreMetadataBlobs();
                }
                if (store.current.indexBehind()) {
                    store.scheduleIndexWrite(); // a crash (or SIGKILL) came before the index caught up
                }
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

    private static void refuseForeignDirectory(BlobFiles files) throws IOException {
        Path root = files.root();
        if (Files.exists(root) && !Files.isDirectory(root)) {
            throw new StoreDamagedException("store " + root + " is not a directory");
        }
        if (Files.isDirectory(root) && !Files.exists(files.layoutFile())) {
            try (Stream<Path> entries = Files.list(root)) {
                if (entries.anyMatch(p -> !p.getFileName().toString().equals(BlobFiles.WORK_DIR)
                        && !p.getFileName().toString().equals("blobs"))) {
                    throw new StoreDamagedException("store " + root + " is a non-empty directory without an "
                            + "oci-layout file: not a vimgfs store; choose an empty or new directory");
                }
            }
        }
    }

    private void initialiseLayout() throws IOException {
        if (!Files.exists(files.layoutFile())) {
            BlobFiles.writeSynced(files.layoutFile(), OciLayout.LAYOUT_JSON);
        }
        if (!Files.exists(files.index())) {
            files.replaceIndex(OciLayout.emptyIndexJson(), () -> { });
        }
        checkLayout();
    }

    private void checkLayout() throws IOException {
        if (!Files.exists(files.layoutFile())) {
            throw new StoreDamagedException("store " + files.root() + " has no oci-layout file: not a vimgfs store"
                    + " (and its filesystem is read-only, so it cannot be created)");
        }
        String layout = Files.readString(files.layoutFile());
        if (!layout.replace(" ", "").contains("\"imageLayoutVersion\":\"1.0.0\"")) {
            throw new StoreDamagedException("store " + files.root() + " has an unsupported oci-layout: " + layout.strip());
        }
    }

    public Path root() {
        return files.root();
    }

    /** Increases whenever the catalog changes, here or (after {@link #refresh}) in another process. */
    public long generation() {
        return current.generation();
    }

    // ---- reading -------------------------------------------------------------------------

    /**
     * Catches up with what other processes committed, noticed by the size of the journal or a
     * new index.json (two stats when nothing changed); returns whether the catalog changed.
     */
    public boolean refresh() throws IOException {
        Snapshot seen = current;
        if (indexVersion().equals(seen.index()) && journal.version().equals(seen.journalVersion())) {
            return false;
        }
        return lock.consistent(() -> {
            long before = current.generation();
            reloadIfChanged();
            if (current.indexBehind() && journal.writable()) {
                scheduleIndexWrite(); // another process committed; if it died before rewriting, this one will
            }
            return current.generation() != before;
        });
    }

    /** Every image, names included, in digest order. */
    public List<ImageInfo> list() {
        Catalog catalog = current.catalog();
        return catalog.images().stream().map(catalog::info).toList();
    }

    /** Every name and the image it refers to, in name order. */
    public NavigableMap<ImageName, Digest> names() {
        return current.catalog().names();
    }

    public Optional<ImageInfo> image(Digest digest) {
        Catalog catalog = current.catalog();
        return catalog.image(digest).map(catalog::info);
    }

    public Optional<ImageInfo> image(ImageName name) {
        Catalog catalog = current.catalog();
        return catalog.digestOf(name).flatMap(catalog::image).map(catalog::info);
    }

    /**
     * Finds the image a user means: a name (optionally pinned), {@code sha256:<hex>}, or a unique
     * prefix of at least three hex digits. A name wins over a short digest prefix spelling the
     * same; a full digest always means the digest.
     */
    public ImageInfo resolve(String reference) throws StoreException {
        return resolve(current.catalog(), reference);
    }

    /**
     * The stored name a reference means, if it means a name rather than a digest: {@code rm}
     * untags it. Older versions let a name spell a full digest ({@code <64 hex>}, or
     * {@code sha256:<64 hex>} as repository {@code sha256}); such a name is kept, but reached only
     * with an explicit tag ({@code <64 hex>:latest}), so it never stands in for the digest.
     */
    public Optional<ImageName> nameIn(String reference) {
        return nameIn(current.catalog(), reference);
    }

    private static Optional<ImageName> nameIn(Catalog catalog, String reference) {
        Matcher prefix = DIGEST_PREFIX.matcher(reference);
        if (prefix.matches() && prefix.group(1).length() == 64) {
            return Optional.empty();
        }
        try {
            return Optional.of(Reference.parseExisting(reference)).filter(r -> r.pin().isEmpty())
                    .map(Reference::name).filter(name -> catalog.digestOf(name).isPresent());
        } catch (InvalidNameException e) {
            return Optional.empty();
        }
    }

    private static ImageInfo resolve(Catalog catalog, String reference) throws StoreException {
        Optional<Digest> named = nameIn(catalog, reference).flatMap(catalog::digestOf);
        if (named.isPresent()) {
            return catalog.info(catalog.image(named.get()).orElseThrow());
        }
        Matcher prefix = DIGEST_PREFIX.matcher(reference);
        if (prefix.matches()) {
            List<Digest> matches = catalog.withPrefix(prefix.group(1));
            if (matches.size() > 1) {
                throw new AmbiguousReferenceException(prefix.group(1), matches);
            }
            return matches.stream().findFirst().flatMap(catalog::image).map(catalog::info)
                    .orElseThrow(() -> new ImageNotFoundException(reference));
        }
        if (OTHER_DIGEST.matcher(reference).matches()) {
            Digest.parse(reference); // a digest in another algorithm: say so rather than "not found"
        }
        Reference parsed = Reference.parseExisting(reference);
        return catalog.digestOf(parsed.name())
                .filter(digest -> parsed.pin().map(digest::equals).orElse(true))
                .flatMap(catalog::image).map(catalog::info)
                .orElseThrow(() -> new ImageNotFoundException(reference));
    }

    /** Opens an image's bytes for reading; the channel stays readable after the image is removed. */
    public FileChannel openImage(Digest digest) throws IOException {
        try {
            return FileChannel.open(files.blob(digest), StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new ImageNotFoundException(digest.toString());
        }
    }

    /** Where an image's bytes live, for stat-like questions (allocation); never write to it. */
    public Path imagePath(Digest digest) {
        return files.blob(digest);
    }

    public StoreStats stats() throws IOException {
        FileStore store = Files.getFileStore(files.root());
        Catalog catalog = current.catalog();
        long imageBytes = catalog.images().stream().mapToLong(StoredImage::size).sum();
        return new StoreStats(store.getTotalSpace(), store.getUnallocatedSpace(), store.getUsableSpace(),
                store.getBlockSize(), catalog.images().size(), catalog.names().size(), imageBytes);
    }

    // ---- adding --------------------------------------------------------------------------

    /** Starts an upload into the staging area; {@link #place} turns it into an image. */
    public Upload beginUpload() throws IOException {
        lock.requireWritable(ADD);
        return Upload.create(files.newStagingPath());
    }

    /** Imports a file under a name, hashing while it copies; runs of zeros stay holes. */
    public ImageInfo importFile(Path source, Reference reference, LongConsumer progress) throws IOException {
        try (InputStream in = Files.newInputStream(source)) {
            return importStream(in, reference, progress);
        }
    }

    public ImageInfo importStream(InputStream in, Reference reference, LongConsumer progress) throws IOException {
        Upload upload = beginUpload();
        try {
            copyInto(upload, in, progress);
            return place(upload, reference);
        } finally {
            upload.abandon();
        }
    }

    /** One file of a batch import and the name to give it. */
    public record ImportItem(Path file, Reference reference) {
    }

    /**
     * Imports many files with one index commit per {@value #BATCH_COMMIT} files: all of a chunk is
     * placed or none. A base must come before the overlays that name it.
     */
    public List<ImageInfo> importAll(List<ImportItem> items, LongConsumer progress) throws IOException {
        List<ImageInfo> placed = new ArrayList<>();
        for (int from = 0; from < items.size(); from += BATCH_COMMIT) {
            placed.addAll(importChunk(items.subList(from, Math.min(items.size(), from + BATCH_COMMIT)), progress));
        }
        return placed;
    }

    private List<ImageInfo> importChunk(List<ImportItem> items, LongConsumer progress) throws IOException {
        List<Upload> uploads = new ArrayList<>();
        try {
            refresh();
            List<Staged> staged = new ArrayList<>();
            for (ImportItem item : items) {
                Upload upload = beginUpload();
                uploads.add(upload);
                try (InputStream in = Files.newInputStream(item.file())) {
                    copyInto(upload, in, progress);
                    staged.add(stage(upload, item.reference()));
                } catch (StoreException e) {
                    throw e;
                } catch (IOException e) {
                    throw new IOException(item.file() + ": " + e.getMessage(), e);
                }
            }
            List<Map.Entry<ImageName, StoredImage>> names = new ArrayList<>();
            Catalog after = change(ADD, catalog -> {
                names.clear();
                List<Change> changes = new ArrayList<>();
                Catalog working = catalog; // so a base placed earlier in the chunk is there for its overlays
                for (Staged s : staged) {
                    StoredImage image = admit(working, s);
                    List<Change> one = named(working, s.reference().name(), image);
                    working = working.apply(one);
                    changes.addAll(one);
                    names.add(Map.entry(s.reference().name(), image));
                }
                return changes;
            });
            return names.stream().map(e -> after.info(after.image(e.getValue().layer()).orElseThrow())).toList();
        } finally {
            for (Upload upload : uploads) {
                upload.abandon();
            }
        }
    }

    private static void copyInto(Upload upload, InputStream in, LongConsumer progress) throws IOException {
        byte[] chunk = new byte[COPY_CHUNK];
        long position = 0;
        int n;
        while ((n = in.readNBytes(chunk, 0, chunk.length)) > 0) {
            if (!allZero(chunk, n)) {
                upload.write(ByteBuffer.wrap(chunk, 0, n), position);
            }
            position += n;
            progress.accept(n);
        }
        upload.truncate(position);
    }

    private static boolean allZero(byte[] chunk, int length) {
        return java.util.Arrays.mismatch(chunk, 0, length, new byte[length], 0, length) < 0;
    }

    /** An upload hashed, made durable and checked, ready to be admitted under the lock. */
    private record Staged(Upload upload, Reference reference, Digest digest, long size, ProbeResult probe,
            Optional<Digest> backing) {
    }

    /**
     * Hashes, checks and places an upload under the reference's name (SPEC §4, §6). The upload is
     * consumed: placed, or on any failure dropped, and in both cases closed.
     */
    public ImageInfo place(Upload upload, Reference reference) throws IOException {
        try {
            refresh();
            Staged staged = stage(upload, reference);
            Catalog after = change(ADD, catalog -> named(catalog, reference.name(), admit(catalog, staged)));
            return after.info(after.image(staged.digest()).orElseThrow());
        } finally {
            upload.abandon();
        }
    }

    /** Seals the upload, checks a pinned digest, and probes content the store does not hold yet. */
    private Staged stage(Upload upload, Reference reference) throws IOException {
        options.crashHook().accept(CrashPoint.STAGED);
        Digest digest = upload.seal(n -> { });
        Optional<StoredImage> known = current.catalog().image(digest);
        if (known.isEmpty()) {
            upload.sync(); // new bytes: durable before any lock is taken; a name for stored content skips it
        }
        options.crashHook().accept(CrashPoint.STAGED_SYNCED);
        long size = upload.size();
        if (reference.pin().isPresent() && !reference.pin().get().equals(digest)) {
            throw new DigestMismatchException(reference.pin().get(), digest);
        }
        ProbeResult probe = known.isPresent() ? null : probe(upload.channel(), size);
        Optional<Digest> backing = known.isPresent() ? known.get().backing() : backingDigest(probe);
        return new Staged(upload, reference, digest, size, probe, backing);
    }

    /** The changes that give the image the name, adding the image first if the catalog lacks it. */
    private static List<Change> named(Catalog catalog, ImageName name, StoredImage image) throws InvalidNameException {
        catalog.checkNewName(name);
        Change set = new Change.SetName(name, image.layer());
        return catalog.image(image.layer()).isPresent() ? List.of(set) : List.of(new Change.AddImage(image), set);
    }

    /**
     * Under the lock, before the change is made: the stored image for staged content, moving its
     * layer into blobs/ and writing its manifest if it is new, all durable before the journal names them.
     */
    private StoredImage admit(Catalog catalog, Staged staged) throws IOException {
        Optional<Digest> backing = staged.backing();
        if (backing.isPresent() && catalog.image(backing.get()).isEmpty()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.MISSING_BACKING,
                    "backing image " + backing.get() + " is not in the store; add the base image first");
        }
        Optional<StoredImage> known = catalog.image(staged.digest());
        if (known.isPresent()) {
            return known.get();
        }
        // Known content can lose its image before we hold the lock: then it is new again.
        ProbeResult probe = staged.probe() != null ? staged.probe() : probe(staged.upload().channel(), staged.size());
        if (backing.isPresent()) {
            checkBackingFormat(probe, catalog.image(backing.get()).orElseThrow());
        }
        installLayer(staged, probe, backing);
        StoredImage image = writeMetadata(staged.digest(), staged.size(), probe, backing);
        options.crashHook().accept(CrashPoint.MANIFEST_WRITTEN);
        return image;
    }

    /**
     * Moves a checked upload into blobs/ as the layer: sealed, with its attributes, durable. A
     * blob it creates is remembered, so a change that fails later deletes it again.
     */
    private void installLayer(Staged staged, ProbeResult probe, Optional<Digest> backing) throws IOException {
        boolean newBlob = !files.exists(staged.digest());
        staged.upload().verifySealed(); // the bytes published are the bytes hashed
        staged.upload().sync(); // content that was stored when staged, and lost its image since
        files.install(staged.upload().file(), staged.digest(),
                Optional.of(new BlobAttributes(staged.digest(), probe.format(), probe.virtualSize(), backing)));
        if (newBlob) {
            created.add(staged.digest());
        }
        blobDirDirty = true;
        options.crashHook().accept(CrashPoint.LAYER_PLACED);
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
        for (Path root : options.mountRoots()) {
            String prefix = root.toAbsolutePath().normalize() + "/by-digest/sha256/";
            if (backing.startsWith(prefix) && Digest.isHex64(backing.substring(prefix.length()))) {
                return Optional.of(new Digest(backing.substring(prefix.length())));
            }
        }
        throw new ImageRejectedException(ImageRejectedException.Reason.FORBIDDEN_BACKING,
                "backing file '" + InvalidNameException.printable(backing) + "' is outside the store: a backing file must be"
                        + " a stored image's bare digest (<64 hex>) or <mountpoint>/by-digest/sha256/<64 hex>");
    }

    private StoredImage writeMetadata(Digest layer, long size, ProbeResult probe, Optional<Digest> backing)
            throws IOException {
        Instant created = options.clock().instant();
        Metadata metadata = Metadata.of(layer, size, probe.format(), probe.virtualSize(), probe.clusterSize(), backing, created);
        writeBlob(metadata.config(), false);
        writeBlob(metadata.manifest(), false);
        blobDirDirty = true;
        return metadata.image();
    }

    /**
     * The config and manifest vimgfs writes for an image, and the image they make: a function of
     * the fields the journal's AddImage record holds, so a commit need not fsync them (see
     * {@link #restoreMetadataBlobs}).
     */
    private record Metadata(StoredImage image, byte[] config, byte[] manifest) {
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

    /**
     * Writes a small blob, remembering it in {@link #created} if this wrote it. One that is not
     * {@code durable} now is fsynced before index.json names it ({@link #syncMetadataBlobs}).
     */
    private Digest writeBlob(byte[] content, boolean durable) throws IOException {
        Digest digest = Digest.of(BlobFiles.sha256(content));
        if (!files.exists(digest)) {
            files.writeBlob(content, durable);
            created.add(digest);
            if (!durable) {
                unsyncedBlobs.add(digest);
            }
        }
        return digest;
    }

    // ---- artifacts from elsewhere (pull and push) -----------------------------------------

    /** A stored image exactly as the layout holds it: what {@code vimgfs push} sends byte for byte. */
    public record Artifact(byte[] manifest, byte[] config, Digest layer, long layerSize, String layerMediaType,
            Path layerFile) {
    }

    /** The manifest, config and layer of a stored image, for sending it elsewhere unchanged. */
    public Artifact artifact(Digest layer) throws IOException {
        StoredImage image = current.catalog().image(layer).orElseThrow(() -> new ImageNotFoundException(layer.toString()));
        return new Artifact(files.read(image.manifest()), files.read(image.config()), layer, image.size(),
                image.format().mediaType(), files.blob(layer));
    }

    /**
     * Places a vimgfs artifact from elsewhere byte for byte: its manifest and config are stored as
     * given, so the image keeps the manifest digest it had where it came from. The upload holds the
     * layer; it is hashed, pinned and probed exactly as {@link #place} does (SPEC §4, §6), and the
     * manifest must describe it truly: its digest, size, format, virtual size and backing. The
     * upload is consumed, as by {@link #place}.
     */
    public ImageInfo placeArtifact(Upload layer, byte[] manifest, byte[] config, Reference reference) throws IOException {
        try {
            refresh();
            Digest manifestDigest = Digest.of(BlobFiles.sha256(manifest));
            StoredImage described = OciLayout.parseImage(manifestDigest, manifest, config);
            if (!described.config().equals(Digest.of(BlobFiles.sha256(config)))) {
                throw new DigestMismatchException(described.config(), Digest.of(BlobFiles.sha256(config)));
            }
            Staged staged = stage(layer, reference);
            if (!staged.digest().equals(described.layer()) || staged.size() != described.size()) {
                throw new DigestMismatchException(described.layer(), staged.digest());
            }
            checkDescribed(described, staged);
            Catalog after = change("place an image", catalog -> named(catalog, reference.name(),
                    admitArtifact(catalog, staged, described, manifest, config)));
            return after.info(after.image(staged.digest()).orElseThrow());
        } finally {
            layer.abandon();
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

    private StoredImage admitArtifact(Catalog catalog, Staged staged, StoredImage described, byte[] manifest,
            byte[] config) throws IOException {
        Optional<Digest> backing = staged.backing();
        if (backing.isPresent() && catalog.image(backing.get()).isEmpty()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.MISSING_BACKING,
                    "backing image " + backing.get() + " is not in the store; pull the base image first");
        }
        Optional<StoredImage> known = catalog.image(staged.digest());
        if (known.isPresent()) {
            return known.get();
        }
        ProbeResult probe = staged.probe() != null ? staged.probe() : probe(staged.upload().channel(), staged.size());
        if (staged.probe() == null) {
            checkDescribed(described, new Staged(staged.upload(), staged.reference(), staged.digest(), staged.size(),
                    probe, staged.backing()));
        }
        if (backing.isPresent()) {
            checkBackingFormat(probe, catalog.image(backing.get()).orElseThrow());
        }
        installLayer(staged, probe, backing);
        writeBlob(config, true); // not vimgfs's own JSON: the journal could not rebuild it after a power cut
        writeBlob(manifest, true);
        options.crashHook().accept(CrashPoint.MANIFEST_WRITTEN);
        return described;
    }

    // ---- names and removal ---------------------------------------------------------------

    /** Gives an existing image (by name or digest) another name, moving the name if it is taken. */
    public ImageInfo tag(String source, ImageName newName) throws IOException {
        Digest[] tagged = new Digest[1];
        Catalog after = change("name an image", catalog -> {
            tagged[0] = resolve(catalog, source).digest();
            catalog.checkNewName(newName);
            return List.of(new Change.SetName(newName, tagged[0]));
        });
        return after.info(after.image(tagged[0]).orElseThrow());
    }

    /** Removes a name; the image goes with its last name unless an overlay still needs it. */
    public void untag(ImageName name) throws IOException {
        change("remove a name", catalog -> {
            if (catalog.digestOf(name).isEmpty()) {
                throw new ImageNotFoundException(name.toString());
            }
            return List.of(new Change.RemoveName(name));
        });
    }

    /**
     * Removes an image and all its names. An image that is the backing of another stays, without
     * names, as long as that overlay lives; the result says whether the image is gone.
     */
    public boolean removeImage(Digest digest) throws IOException {
        Catalog after = change("remove an image", catalog -> {
            if (catalog.image(digest).isEmpty()) {
                throw new ImageNotFoundException(digest.toString());
            }
            return List.of(new Change.RemoveImage(digest));
        });
        return after.image(digest).isEmpty();
    }

    // ---- group commit --------------------------------------------------------------------

    /**
     * What a request makes of the catalog it finds under the store lock: the changes, checked
     * against that catalog. It may install blobs first (a new image's layer, config and
     * manifest), durably; it never changes the catalog itself.
     */
    private interface Plan {
        List<Change> changes(Catalog catalog) throws IOException;
    }

    /**
     * A request waiting for a commit, and its outcome once one is done. A committer takes it, or
     * its caller cancels it after failing to commit: whichever comes first, so a request whose
     * caller saw a failure is never committed by the next writer.
     */
    private static final class PendingChange {
        private static final int QUEUED = 0;
        private static final int TAKEN = 1;
        private static final int CANCELLED = 2;

        final Plan plan;
        private final java.util.concurrent.atomic.AtomicInteger state = new java.util.concurrent.atomic.AtomicInteger(QUEUED);
        private final java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        /** Guarded by the lock until {@link #finish}; read by the caller after it. */
        Catalog result;
        Exception failure;

        PendingChange(Plan plan) {
            this.plan = plan;
        }

        boolean take() {
            return state.compareAndSet(QUEUED, TAKEN);
        }

        boolean cancel() {
            return state.compareAndSet(QUEUED, CANCELLED);
        }

        boolean isDone() {
            return done.getCount() == 0;
        }

        void finish() {
            done.countDown();
        }

        void awaitDone() throws java.io.InterruptedIOException {
            try {
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted waiting for a commit of the store");
            }
        }
    }

    private final Queue<PendingChange> pending = new ConcurrentLinkedQueue<>();
    /**
     * Blobs the commit under way created (layers, configs, manifests), in order. Guarded by the lock.
     * A change that fails, or a commit whose journal frame is not written (a full disk), deletes
     * its own at once: nothing names them, and GC may not run for a long time.
     */
    private final List<Digest> created = new ArrayList<>();
    /**
     * Images this process's commits dropped whose blobs wait for index.json to stop naming them.
     * Guarded by the lock.
     */
    private final List<StoredImage> unswept = new ArrayList<>();
    /**
     * Whether the commit under way renamed blobs into blobs/: the directory is fsynced once
     * before its journal frame, for all of them. Guarded by the lock.
     */
    private boolean blobDirDirty;
    /**
     * Config and manifest blobs that may not be fsynced yet: this process's commits', and those
     * of the images its replays of the journal added (another process's commits). The journal
     * names them, and {@link #restoreMetadataBlobs} rebuilds them after a power cut, but
     * index.json, which other tools trust, names them only once they are durable. Added under
     * the lock; the index writer drains it before taking the lock, {@link #writeIndex} under it.
     */
    private final Queue<Digest> unsyncedBlobs = new ConcurrentLinkedQueue<>();

    /**
     * Makes a request's changes and returns the catalog right after them. Requests that queue up
     * while another thread holds the lock are committed by whichever thread takes the lock next,
     * in one journal frame with one fsync (group commit). A request that fails is skipped; the
     * others still commit. A caller that sees a failure can rely on its request not committing.
     */
    private Catalog change(String purpose, Plan plan) throws IOException {
        PendingChange mine = new PendingChange(plan);
        pending.add(mine);
        try {
            lock.exclusive(purpose, () -> {
                if (!mine.isDone()) {
                    commitPending();
                }
                return null;
            });
        } catch (IOException | RuntimeException e) {
            if (mine.cancel()) {
                throw e; // never taken, and now never will be
            }
            mine.awaitDone(); // taken by a commit that then ran into trouble: its outcome is the answer
        }
        if (mine.failure instanceof IOException io) {
            throw io;
        }
        if (mine.failure instanceof RuntimeException runtime) {
            throw runtime;
        }
        return mine.result;
    }

    private void commitPending() throws IOException {
        reloadIfChanged();
        Snapshot before = current;
        Catalog catalog = before.catalog().keptBy(commitView(before.catalog()));
        List<PendingChange> batch = new ArrayList<>();
        List<Change> changes = new ArrayList<>();
        created.clear();
        blobDirDirty = false;
        String sealed = sealStampBefore();
        try {
            for (PendingChange next = pending.poll(); next != null; next = pending.poll()) {
                if (!next.take()) {
                    continue;
                }
                batch.add(next);
                int mark = created.size();
                try {
                    List<Change> planned = next.plan.changes(catalog);
                    Catalog applied = catalog.apply(planned);
                    changes.addAll(planned);
                    changes.addAll(catalog.dropsTo(applied)); // recorded, so a replay drops exactly these
                    catalog = applied;
                    next.result = catalog;
                } catch (IOException | RuntimeException e) {
                    next.failure = e;
                    deleteCreatedSince(mark, e);
                }
            }
            if (!changes.isEmpty()) {
                commit(before, catalog, changes);
            }
        } catch (IOException | RuntimeException e) {
            batch.forEach(p -> p.failure = p.failure != null ? p.failure : e);
        } finally {
            if (!created.isEmpty()) {
                keepSealStamp(sealed);
            }
            created.clear();
            batch.forEach(PendingChange::finish);
        }
    }

    /**
     * Appends the changes to the journal (the commit point), publishes the catalog they made, and
     * asks for index.json to catch up. If the frame cannot be written, the journal is cut back and
     * the blobs the changes created are deleted; if even the cut fails they stay, for the frame may name them.
     */
    private void commit(Snapshot before, Catalog next, List<Change> changes) throws IOException {
        long sequence = before.sequence() + 1;
        long end;
        try {
            if (blobDirDirty) {
                files.syncBlobDir(); // the names of every blob the frame mentions, in one fsync
                blobDirDirty = false;
            }
            long start = System.nanoTime();
            end = journal.append(before.journalEnd(), sequence, changes, options.crashHook());
            options.events().journalAppended(System.nanoTime() - start, changes.size());
        } catch (IOException | RuntimeException e) {
            try {
                journal.truncate(before.journalEnd());
                deleteCreatedSince(0, e);
            } catch (IOException | RuntimeException cut) {
                e.addSuppressed(cut);
            }
            throw e;
        }
        options.crashHook().accept(CrashPoint.JOURNAL_SYNCED);
        unswept.addAll(next.dropped());
        current = new Snapshot(next.committed(), before.index(), before.indexGeneration(), journal.version(), end, sequence,
                generation.incrementAndGet());
        scheduleIndexWrite();
    }

    /** Deletes the blobs created since {@code mark}; a failure to delete is added to the cause. */
    private void deleteCreatedSince(int mark, Exception cause) {
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

    // ---- index.json in the background ---------------------------------------------------

    private final Object writerState = new Object();
    /** The one thread that rewrites index.json; made at the first commit. Guarded by writerState. */
    private java.util.concurrent.ScheduledThreadPoolExecutor indexWriter;
    private boolean writeScheduled;
    private boolean closed;
    private long lastWriteNanos = Long.MIN_VALUE / 2;

    /**
     * Brings index.json up to date with the journal now, truncates the journal, and deletes the
     * blobs of images this process dropped. Also done in the background about once a second
     * while changes flow, and on close, gc and fsck.
     */
    public void syncIndex() throws IOException {
        writeCache(lock.exclusive("write its index", () -> writeIndex(null)));
    }

    /** Asks the writer thread for a rewrite: at once if the last was a second ago, else a second after it. */
    private void scheduleIndexWrite() {
        synchronized (writerState) {
            if (writeScheduled || closed) {
                return;
            }
            if (indexWriter == null) {
                indexWriter = new java.util.concurrent.ScheduledThreadPoolExecutor(1, runnable -> {
                    Thread thread = new Thread(runnable, "vimgfs index writer " + files.root());
                    thread.setDaemon(true); // the journal is durable: exiting without this thread loses nothing
                    return thread;
                });
                indexWriter.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
            }
            writeScheduled = true;
            long delay = Math.max(0, lastWriteNanos + INDEX_INTERVAL_NANOS - System.nanoTime());
            indexWriter.schedule(this::writeIndexInBackground, delay, java.util.concurrent.TimeUnit.NANOSECONDS);
        }
    }

    private void writeIndexInBackground() {
        synchronized (writerState) {
            writeScheduled = false;
            lastWriteNanos = System.nanoTime();
        }
        try {
            syncMetadataBlobs(); // the bulk of it without the lock, so commits go on meanwhile
            Snapshot s = current;
            Prepared prepared = s.indexBehind() && s.journalEnd() < JOURNAL_COMPACT_BYTES // else it is serialized under the lock
                    ? new Prepared(s, OciLayout.indexJson(s.catalog(), s.sequence())) : null;
            if (prepared != null) {
                options.crashHook().accept(CrashPoint.INDEX_PREPARED);
            }
            writeCache(lock.exclusive("write its index", () -> writeIndex(prepared)));
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": cannot rewrite index.json (" + e.getMessage()
                    + "); the journal keeps every change, and the next commit or close tries again");
        }
    }

    /**
     * index.json's bytes for a snapshot, serialized by the index writer without the lock (at
     * 100,000 images that takes longer than a second, and commits would wait for it).
     */
    private record Prepared(Snapshot snapshot, byte[] index) {
    }

    /** What an index write wrote, for the catalog cache. */
    private record Written(byte[] index, Catalog catalog, long sequence) {
    }

    /**
     * How far the journal may grow while the index writer writes snapshots that commits have
     * already passed (and so cannot compact it); beyond it the writer serializes under the lock.
     */
    private static final long JOURNAL_COMPACT_BYTES = 4L << 20;

    /** Under the lock: brings index.json up to date, compacts the journal, sweeps what was dropped. */
    private void writeIndex() throws IOException {
        writeCache(writeIndex(null));
    }

    /**
     * Under the lock: rewrites index.json if it is behind, compacts the journal, sweeps what was
     * dropped. With {@code prepared}, writes those bytes instead of serializing the catalog, when
     * they are still newer than the index on disk: if commits came after its snapshot, index.json
     * then names the snapshot's sequence, the journal keeps every frame (replay skips those the
     * index includes), and only images the snapshot no longer had are swept. Returns what it wrote.
     */
    private Written writeIndex(Prepared prepared) throws IOException {
        reloadIfChanged();
        Snapshot s = current;
        Written written = null;
        Snapshot from = s;
        if (s.indexBehind()) {
            syncMetadataBlobs(); // under the lock: whatever the commits since the last drain added
            long start = System.nanoTime();
            byte[] index;
            if (prepared != null && prepared.snapshot().catalog() == s.catalog()) {
                index = prepared.index(); // nothing changed since
            } else if (prepared != null && prepared.snapshot().sequence() > s.indexGeneration()
                    && prepared.snapshot().sequence() < s.sequence() && s.journalEnd() < JOURNAL_COMPACT_BYTES) {
                from = prepared.snapshot();
                index = prepared.index();
            } else {
                index = OciLayout.indexJson(s.catalog(), s.sequence());
            }
            files.replaceIndex(index, () -> options.crashHook().accept(CrashPoint.INDEX_STAGED));
            options.events().indexWritten(System.nanoTime() - start, index.length);
            written = new Written(index, from.catalog(), from.sequence());
            options.crashHook().accept(CrashPoint.INDEX_REPLACED);
            if (from == s) {
                journal.truncate(Journal.START); // every frame is at or below the sequence the index now has
                options.crashHook().accept(CrashPoint.JOURNAL_COMPACTED);
                current = new Snapshot(s.catalog(), indexVersion(), s.sequence(), journal.version(), Journal.START,
                        s.sequence(), s.generation());
            } else {
                current = new Snapshot(s.catalog(), indexVersion(), from.sequence(), s.journalVersion(), s.journalEnd(),
                        s.sequence(), s.generation());
                scheduleIndexWrite(); // the commits after the snapshot
            }
        }
        if (!unswept.isEmpty()) {
            Catalog named = from.catalog(); // what the index on disk names, if this call wrote it
            List<StoredImage> dropped = new ArrayList<>();
            List<StoredImage> stillNamed = new ArrayList<>();
            for (StoredImage image : unswept) {
                (from != s && named.image(image.layer()).isPresent() ? stillNamed : dropped).add(image);
            }
            unswept.clear(); // if the sweep fails part way, gc finds the rest
            unswept.addAll(stillNamed);
            if (!dropped.isEmpty()) {
                String sealed = sealStampBefore();
                collector.sweepDropped(dropped, current.catalog());
                keepSealStamp(sealed);
            }
        }
        persistSealStamp();
        return written;
    }

    /**
     * Another process's commit (or one before a crash) may have left its new images' config and
     * manifest unsynced: this process fsyncs them too before an index.json it writes names them.
     */
    private void queueMetadataSync(Journal.Frame frame) {
        for (Change change : frame.changes()) {
            if (change instanceof Change.AddImage add) {
                unsyncedBlobs.add(add.image().config());
                unsyncedBlobs.add(add.image().manifest());
            }
        }
    }

    /**
     * Fsyncs the config and manifest blobs commits left unsynced. One that fails goes back on
     * the queue and the failure is thrown, so index.json is not rewritten to name it.
     */
    private void syncMetadataBlobs() throws IOException {
        synchronized (unsyncedBlobs) { // a blob the index writer took off the queue is durable before any index names it
            syncQueuedBlobs();
        }
    }

    private void syncQueuedBlobs() throws IOException {
        for (Digest digest = unsyncedBlobs.poll(); digest != null; digest = unsyncedBlobs.poll()) {
            try {
                files.syncFile(digest);
            } catch (IOException | RuntimeException e) {
                unsyncedBlobs.add(digest);
                throw e;
            }
        }
    }

    /**
     * At open, under the lock: the config and manifest blobs of the images the journal adds are
     * whole, rewritten from the journal's records where a power cut lost their unsynced bytes
     * (a commit fsyncs only the layer, the directory and its frame). An image whose blobs vimgfs
     * did not write (a pulled artifact, fsynced at its commit) cannot be rebuilt; fsck reports it.
     */
    private void restoreMetadataBlobs() throws IOException {
        boolean rewrote = false;
        for (Journal.Frame frame : journal.read(Journal.START).frames()) {
            if (frame.sequence() <= current.indexGeneration()) {
                continue; // in index.json, which names only configs and manifests already fsynced
            }
            for (Change change : frame.changes()) {
                if (change instanceof Change.AddImage add && current.catalog().image(add.image().layer()).isPresent()) {
                    rewrote |= restoreMetadata(add.image());
                }
            }
        }
        if (rewrote) {
            files.syncBlobDir();
        }
    }

    private boolean restoreMetadata(StoredImage image) throws IOException {
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

    // ---- maintenance ---------------------------------------------------------------------

    /**
     * Deletes what nothing keeps: nameless images no {@link KeepReason} holds any more (a hold
     * ended, an overlay was deleted, a file closed), then blobs and staging files nothing references.
     */
    public GcReport collectGarbage(boolean dryRun) throws IOException {
        if (dryRun) { // changes nothing, so a read-only store answers it too (vimgfs status asks)
            return lock.consistent(() -> collectNow(true));
        }
        return lock.exclusive("collect garbage", () -> {
            String sealed = sealStampBefore();
            GcReport report = collectNow(dryRun);
            keepSealStamp(sealed);
            persistSealStamp();
            return report;
        });
    }

    private GcReport collectNow(boolean dryRun) throws IOException {
        reloadIfChanged();
        Catalog catalog = current.catalog();
        Catalog pruned = catalog.keptBy(retentionView(catalog)).withoutUnkept();
        List<GcReport.Removal> images = new ArrayList<>();
        for (StoredImage image : pruned.dropped()) {
            images.add(new GcReport.Removal(files.blob(image.layer()), image.size(),
                    "image " + image.layer() + " has no name and nothing keeps it"));
        }
        if (!dryRun && !pruned.dropped().isEmpty()) {
            change("collect garbage", c -> c.dropsTo(c.keptBy(retentionView(c)).withoutUnkept()));
        }
        writeIndex(); // GC deletes only what the index on disk no longer names
        GcReport rest = collector.collect(dryRun ? pruned : current.catalog(), dryRun);
        List<GcReport.Removal> removals = new ArrayList<>(images);
        Set<Path> listed = new HashSet<>();
        images.forEach(r -> listed.add(r.file()));
        rest.removals().stream().filter(r -> !listed.contains(r.file())).forEach(removals::add);
        return new GcReport(dryRun, removals, rest.kept());
    }

    /**
     * Deletes a blob that lost its image while some process had it open, once nothing references
     * it and no one (this process included) has it open any more; otherwise leaves it for a later
     * gc. The mount calls this when it closes its own descriptor on an image that has no names.
     */
    public boolean collectIfUnused(Digest digest) throws IOException {
        return lock.exclusive("collect an unused blob", () -> {
            reloadIfChanged();
            boolean had = files.exists(digest);
            if (current.catalog().image(digest).isPresent() && current.catalog().namesOf(digest).isEmpty()) {
                // kept while open: gone once closed
                change("collect an unused image", c -> c.dropsTo(c.keptBy(retentionView(c)).withoutUnkept(List.of(digest))));
            }
            writeIndex();
            return collector.collectIfUnused(current.catalog(), digest) || (had && !files.exists(digest));
        });
    }

    /**
     * Deletes the blobs this process kept because someone had them open when their image went,
     * once they are closed. Cheap when there are none; the mount calls it every second.
     */
    public int collectClosed() throws IOException {
        Catalog now = current.catalog();
        if (!collector.keptAny() && !now.hasNameless()) {
            return 0;
        }
        int before = now.images().size();
        if (now.hasNameless()) {
            change("collect closed images", c -> c.dropsTo(c.keptBy(retentionView(c)).withoutUnkept())); // asks Retention: open, held, an overlay's
        }
        int dropped = before - current.catalog().images().size();
        return dropped + lock.exclusive("collect closed blobs", () -> {
            reloadIfChanged();
            return collector.collectClosed(current.catalog());
        });
    }

    /** Removes staging files whose writer is gone (done at every mount). */
    public List<GcReport.Removal> removeStaleStaging() throws IOException {
        return lock.exclusive("remove stale staging files", () -> {
            List<GcReport.Removal> stale = collector.staleWorkFiles();
            for (GcReport.Removal removal : stale) {
                Files.deleteIfExists(removal.file());
            }
            return stale;
        });
    }

    /**
     * Brings the blobs of a store written by an older vimgfs (or copied without attributes) up
     * to date: every blob immutable and mode 0444, every layer with its {@code user.vimgfs.*}
     * xattrs. Touches only blobs lacking them (one ioctl for each that has them); the mount calls
     * this before it serves. Returns how many blobs it changed.
     *
     * <p>That pass opens every blob, 3 s for a 10,000-image store with a cold cache, so after it
     * the store remembers (in {@code .vimgfs/sealed}) the identity and modification time of
     * {@code blobs/sha256} it left; commits of vimgfs, which seal what they place, keep that
     * stamp current, and while it matches the pass is skipped. Anything else that adds a blob
     * (another tool, a copy of the store) changes the directory and the next mount looks again.
     */
    public int sealBlobs() throws IOException {
        return lock.exclusive("seal its blobs", () -> {
            reloadIfChanged();
            String stamp = blobDirStamp();
            if (stamp.equals(readSealStamp())) {
                sealedStamp = stamp;
                return 0;
            }
            int changed = files.sealAll(layerAttributes(), () -> options.crashHook().accept(CrashPoint.SEALING));
            options.crashHook().accept(CrashPoint.SEALING_DONE);
            writeSealStamp(stamp); // blobs/ as the pass began: a blob added meanwhile changed it, and is looked at again
            return changed;
        });
    }

    /** The stamp {@code .vimgfs/sealed} holds while every blob is known sealed; null when unknown. Guarded by the lock. */
    private String sealedStamp;
    /** Whether {@link #sealedStamp} moved on since it was written. Guarded by the lock. */
    private boolean sealStampUnwritten;

    private String blobDirStamp() throws IOException {
        BasicFileAttributes attributes = Files.readAttributes(files.blobDir(), BasicFileAttributes.class);
        return attributes.fileKey() + " " + attributes.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS);
    }

    private String readSealStamp() throws IOException {
        try {
            return Files.readString(files.workDir().resolve("sealed")).strip();
        } catch (NoSuchFileException | java.nio.charset.MalformedInputException e) {
            return null;
        }
    }

    /**
     * Records blobs/ with {@code stamp} as all sealed; written only after every blob is, and a
     * hint only, so a crash that tears it (it can then match nothing) costs one full pass.
     */
    private void writeSealStamp(String stamp) throws IOException {
        sealedStamp = stamp;
        Files.writeString(files.workDir().resolve("sealed"), stamp + "\n");
    }

    /**
     * Under the lock, around a change of blobs/ by this process (which seals what it places): the
     * stamp before, if it was the sealed one, so {@link #keepSealStamp} may move it on.
     */
    private String sealStampBefore() throws IOException {
        String now = blobDirStamp();
        return now.equals(sealedStamp) || now.equals(readSealStamp()) ? now : null;
    }

    /**
     * Moves the sealed stamp on in memory; the index writer writes it to {@code .vimgfs/sealed}
     * ({@link #persistSealStamp}), so a commit pays no file write for a hint.
     */
    private void keepSealStamp(String before) {
        if (before == null) {
            return;
        }
        try {
            sealedStamp = blobDirStamp();
            sealStampUnwritten = true;
        } catch (IOException e) {
            sealedStamp = null; // the next mount does the full pass
        }
    }

    /** Under the lock: writes the stamp a commit moved on, if blobs/ is still as it left it. */
    private void persistSealStamp() {
        if (!sealStampUnwritten) {
            return;
        }
        sealStampUnwritten = false;
        try {
            if (blobDirStamp().equals(sealedStamp)) {
                writeSealStamp(sealedStamp);
            }
        } catch (IOException e) {
            sealedStamp = null; // the next mount does the full pass
        }
    }

    /**
     * Which blobs some process on the host has open (by digest: an image's is its layer), and who: a scan of
     * every {@code /proc/PID/fd}, as {@code fuser} does. Root sees every process; another user only
     * its own. Costs one readlink per open descriptor on the host.
     */
    public Map<Digest, List<ImageHolder>> openImages() throws IOException {
        return OpenImages.of(files).scan();
    }

    private Map<Digest, BlobAttributes> layerAttributes() {
        Map<Digest, BlobAttributes> layers = new HashMap<>();
        for (StoredImage image : current.catalog().images()) {
            layers.put(image.layer(), BlobAttributes.of(image));
        }
        return layers;
    }

    // ---- what keeps images: holds, prune, last use ----------------------------------------

    /** Every hold: those made with {@code hold add}, then the automatic overlay directories that exist. */
    public List<Hold> holds() throws IOException {
        HoldFile.Contents contents = holdFile.read();
        List<Hold> all = new ArrayList<>(contents.holds());
        for (Path directory : options.automaticOverlays()) {
            boolean explicit = all.stream().anyMatch(h -> h instanceof Hold.Overlays o && o.directory().equals(directory));
            if (!explicit && !contents.released().contains(directory) && Files.isDirectory(directory)) {
                all.add(new Hold.Overlays(directory, "libvirt's default image directory", Instant.EPOCH, true));
            }
        }
        return all;
    }

    /** Holds the image a reference means, so it stays without names; holding it again replaces the reason. */
    public Hold hold(String reference, String why) throws IOException {
        return lock.exclusive("hold an image", () -> {
            reloadIfChanged();
            Digest digest = resolve(current.catalog(), reference).digest();
            Hold hold = new Hold.Image(digest, reference, why, options.clock().instant());
            HoldFile.Contents contents = holdFile.read();
            List<Hold> holds = new ArrayList<>(contents.holds());
            holds.removeIf(h -> h instanceof Hold.Image image && image.digest().equals(digest));
            holds.add(hold);
            holdFile.write(new HoldFile.Contents(holds, contents.released()));
            return hold;
        });
    }

    /** Holds every image a qcow2 under the directory uses (recursively, whole chains). */
    public Hold holdOverlays(Path directory, String why) throws IOException {
        Path absolute = directory.toAbsolutePath().normalize();
        if (!Files.isDirectory(absolute)) {
            throw new NoSuchFileException(absolute.toString(), null, "no such directory to hold the overlays of");
        }
        return lock.exclusive("hold a directory of overlays", () -> {
            Hold hold = new Hold.Overlays(absolute, why, options.clock().instant(), false);
            HoldFile.Contents contents = holdFile.read();
            List<Hold> holds = new ArrayList<>(contents.holds());
            holds.removeIf(h -> h instanceof Hold.Overlays o && o.directory().equals(absolute));
            holds.add(hold);
            Set<Path> released = new HashSet<>(contents.released());
            released.remove(absolute);
            holdFile.write(new HoldFile.Contents(holds, released));
            return hold;
        });
    }

    /** Ends the holds on the image a reference means; its images go now if nothing else keeps them. */
    public void release(String reference) throws IOException {
        lock.exclusive("end a hold", () -> {
            reloadIfChanged();
            HoldFile.Contents contents = holdFile.read();
            Optional<Digest> meant = Optional.empty();
            try {
                meant = Optional.of(resolve(current.catalog(), reference).digest());
            } catch (ImageNotFoundException e) {
                // the held image may be gone already (a hold made by an older vimgfs): match the hold itself
            }
            String hex = reference.startsWith("sha256:") ? reference.substring(7) : reference;
            Optional<Digest> target = meant;
            List<Hold> holds = new ArrayList<>(contents.holds());
            boolean removed = holds.removeIf(h -> h instanceof Hold.Image image && (target.map(image.digest()::equals)
                    .orElse(image.reference().equals(reference) || (hex.length() >= 3 && image.digest().hex().startsWith(hex)))));
            if (!removed) {
                throw new ImageNotFoundException("a hold on " + reference);
            }
            holdFile.write(new HoldFile.Contents(holds, contents.released()));
            change("end a hold", c -> c.dropsTo(c.keptBy(retentionView(c)).withoutUnkept()));
            return null;
        });
    }

    /** Ends the hold on a directory of overlays (an automatic one too); what only it kept goes now. */
    public void releaseOverlays(Path directory) throws IOException {
        Path absolute = directory.toAbsolutePath().normalize();
        lock.exclusive("end a hold", () -> {
            HoldFile.Contents contents = holdFile.read();
            List<Hold> holds = new ArrayList<>(contents.holds());
            boolean removed = holds.removeIf(h -> h instanceof Hold.Overlays o && o.directory().equals(absolute));
            Set<Path> released = new HashSet<>(contents.released());
            if (options.automaticOverlays().contains(absolute)) {
                removed |= released.add(absolute);
            }
            if (!removed) {
                throw new NoSuchFileException(absolute.toString(), null, "no hold on this directory of overlays");
            }
            holdFile.write(new HoldFile.Contents(holds, released));
            change("end a hold", c -> c.dropsTo(c.keptBy(retentionView(c)).withoutUnkept()));
            return null;
        });
    }

    /** Each hold and the images it keeps now (an overlay directory is scanned for this). */
    public Map<Hold, List<Digest>> heldNow() throws IOException {
        Catalog catalog = current.catalog();
        return unchecked(() -> retentionView(catalog).keptByHold());
    }

    /** Why each image stays (empty for one the next gc deletes), for {@code ls --all}. */
    public Map<Digest, List<KeepReason>> keepReasons() throws IOException {
        Catalog catalog = current.catalog();
        Retention.View view = retentionView(catalog);
        return unchecked(() -> {
            Map<Digest, List<KeepReason>> reasons = new java.util.TreeMap<>();
            for (StoredImage image : catalog.images()) {
                reasons.put(image.layer(), view.reasons(catalog, image.layer()));
            }
            return reasons;
        });
    }

    /**
     * Removes the images the policy chooses (or, dry, says which it would), and says for every
     * image why it goes or stays. Never chooses one kept by anything but its names.
     */
    public PruneReport prune(PrunePolicy policy, boolean dryRun) throws IOException {
        StoreLock.Section<PruneReport> run = () -> {
            reloadIfChanged();
            Catalog catalog = current.catalog();
            Retention.View view = retentionView(catalog);
            List<PruneReport.Decision> decisions = unchecked(() -> new PruneChoice(catalog, view, policy,
                    lastUse.all(), options.clock().instant(), Files.getFileStore(files.root())).decide());
            PruneReport report = new PruneReport(dryRun, decisions);
            if (!dryRun && !report.removed().isEmpty()) {
                List<ImageName> names = report.removed().stream().flatMap(i -> i.names().stream()).toList();
                List<Digest> chosen = report.removed().stream().map(ImageInfo::digest).toList();
                change("prune", c -> c.changesTo(c.keptBy(view).withoutNames(names).withoutUnkept(chosen)));
                report.decisions().stream().filter(PruneReport.Decision::remove)
                        .forEach(d -> LOG.log(System.Logger.Level.INFO, "prune: " + d.line(false)));
            }
            return report;
        };
        return dryRun ? lock.consistent(run) : lock.exclusive("prune", run);
    }

    /** Notes that an image was looked up or opened through a mount: a map write, no I/O. */
    public void recordUse(Digest digest) {
        lastUse.record(digest);
    }

    /** Writes the recorded uses to {@code .vimgfs/last-use.json} if a minute passed since the last write (or {@code force}). */
    public boolean persistUses(boolean force) throws IOException {
        return lock.exclusive("record when images were used", () -> lastUse.persist(force));
    }

    /** What ordinary commits ask before a nameless image goes: as {@link #retentionView}, sharing a recent /proc scan. */
    private Retention.View commitView(Catalog catalog) throws IOException {
        return retention.forCommit(catalog, holds(), this::mountRootsUnchecked);
    }

    private Set<Path> mountRootsUnchecked() {
        try {
            return mountRoots();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Retention.View retentionView(Catalog catalog) throws IOException {
        return retention.at(catalog, holds(), () -> {
            try {
                return mountRoots();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /** This process's mountpoints and those the live mount records name: paths under them are never statted. */
    private Set<Path> mountRoots() throws IOException {
        Set<Path> roots = new HashSet<>(options.mountRoots());
        for (String record : liveMounts()) {
            Matcher at = MOUNT_RECORD.matcher(record);
            if (at.matches()) {
                roots.add(Path.of(at.group(1)));
            }
        }
        return roots;
    }

    private static final Pattern MOUNT_RECORD = Pattern.compile("at (/.*) by pid [0-9]+");

    /** Runs a question that scans the filesystem, turning its unchecked I/O failures back into IOException. */
    private static <T> T unchecked(StoreLock.Section<T> question) throws IOException {
        try {
            return question.run();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** Total bytes an fsck hashes, for a progress bar. */
    public long fsckBytes() throws IOException {
        return new StoreChecker(files).bytesToHash();
    }

    /**
     * Re-hashes every blob and checks every reference. With {@code repair}, drops index entries
     * that point at missing or corrupt blobs, deletes corrupt blobs, and collects garbage.
     */
    public FsckReport fsck(boolean repair, LongConsumer progress) throws IOException {
        StoreLock.Section<FsckReport> check = () -> {
            if (journal.writable()) {
                writeIndex(); // so index.json, which other tools read, is what is checked
            }
            StoreChecker.Result result = new StoreChecker(files).check(Files.readAllBytes(files.index()),
                    journal.read(Journal.START), progress);
            if (!repair || result.report().clean()) {
                return result.report();
            }
            List<String> repairs = new ArrayList<>();
            for (JsonNode dropped : result.broken()) {
                repairs.add("dropped index entry " + describe(dropped) + " (it points at a missing or corrupt blob)");
            }
            if (!result.broken().isEmpty()) {
                // a generation no process has seen, so every other one rereads the repaired index
                files.replaceIndex(OciLayout.indexJson(result.healthy(), current.sequence() + 1), () -> { });
                journal.truncate(Journal.START);
            }
            for (Digest corrupt : result.corrupt()) {
                files.delete(corrupt);
                repairs.add("deleted corrupt blob " + corrupt);
            }
            current = load();
            Map<Digest, BlobAttributes> layers = layerAttributes();
            for (Digest unsealed : result.unsealed()) {
                files.seal(files.blob(unsealed), Optional.ofNullable(layers.get(unsealed)));
                repairs.add("made blob " + unsealed + " immutable");
            }
            for (GcReport.Removal removal : collectNow(false).removals()) {
                repairs.add("removed " + files.root().relativize(removal.file()) + ": " + removal.reason());
            }
            FsckReport report = result.report();
            return new FsckReport(report.blobsChecked(), report.bytesChecked(), report.problems(), repairs);
        };
        return repair ? lock.exclusive("repair it", check) : lock.consistent(check);
    }

    private static String describe(JsonNode descriptor) {
        String name = descriptor.path("annotations").path(OciLayout.REF_NAME).asText("");
        String digest = descriptor.path("digest").asText();
        return name.isEmpty() ? digest : name + " (" + digest + ")";
    }

    /**
     * Records a live mount of the store in {@code .vimgfs/mounts/<pid>}, held locked while the
     * mount lives. It never refuses: a store may be mounted again while an old daemon still
     * serves a copy of its mount (libvirt's private mount namespace keeps one alive after
     * {@code fusermount -u}), and several mounts of a store are as safe as several CLI calls.
     * The record goes when closed; a crashed daemon's record is unlocked, and the next claim removes it.
     */
    public Closeable claimMount(Path mountpoint) throws IOException {
        lock.requireWritable("mount it");
        Path mounts = files.workDir().resolve("mounts");
        Files.createDirectories(mounts);
        removeDeadMountRecords(mounts);
        Path record = mounts.resolve(Long.toString(ProcessHandle.current().pid()));
        FileChannel channel = FileChannel.open(record, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        try {
            channel.lock();
            channel.write(ByteBuffer.wrap(("at " + mountpoint + " by pid " + ProcessHandle.current().pid() + "\n")
                    .getBytes(java.nio.charset.StandardCharsets.UTF_8)), 0);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        return () -> {
            Files.deleteIfExists(record);
            channel.close();
        };
    }

    /** The live mounts of this store, as their records say ("at MOUNTPOINT by pid N"). */
    public List<String> liveMounts() throws IOException {
        Path mounts = files.workDir().resolve("mounts");
        if (!Files.isDirectory(mounts)) {
            return List.of();
        }
        List<String> live = new ArrayList<>();
        try (Stream<Path> records = Files.list(mounts)) {
            for (Path record : records.sorted().toList()) {
                if (!isUnlocked(record)) {
                    live.add(Files.readString(record).strip());
                }
            }
        }
        return live;
    }

    private static void removeDeadMountRecords(Path mounts) throws IOException {
        try (Stream<Path> records = Files.list(mounts)) {
            for (Path record : records.toList()) {
                if (isUnlocked(record)) {
                    Files.deleteIfExists(record);
                }
            }
        }
    }

    /** Whether no process holds the record's lock (its daemon is gone). Never called on our own record. */
    private static boolean isUnlocked(Path record) throws IOException {
        if (record.getFileName().toString().equals(Long.toString(ProcessHandle.current().pid()))) {
            return false;
        }
        // a shared probe needs only a read descriptor, so it works on a filesystem that refuses writes
        try (FileChannel channel = FileChannel.open(record, StandardOpenOption.READ)) {
            FileLock probe = channel.tryLock(0, Long.MAX_VALUE, true);
            if (probe == null) {
                return false;
            }
            probe.release();
            return true;
        } catch (NoSuchFileException e) {
            return false;
        } catch (OverlappingFileLockException e) {
            return false;
        }
    }

    /** Rewrites index.json if it is behind (a mount's unmount, a CLI call's end), then lets go of the store. */
    @Override
    public void close() throws IOException {
        java.util.concurrent.ScheduledThreadPoolExecutor writer;
        synchronized (writerState) {
            closed = true;
            writer = indexWriter;
        }
        try {
            if (writer != null) {
                writer.shutdown();
                writer.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES);
            }
            if (journal.writable() && (current.indexBehind() || hasUnfinished())) {
                syncIndex();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            try {
                journal.close();
            } finally {
                lock.close();
            }
        }
    }

    private boolean hasUnfinished() throws IOException {
        return lock.exclusive("close it", () -> !unswept.isEmpty() || sealStampUnwritten);
    }

    // ---- snapshots -----------------------------------------------------------------------

    /**
     * Under the lock (or on a read-only store): catches up with other processes. A longer journal
     * is read from where this process stopped; a new index.json whose generation this process
     * already has (another process compacted) is taken without parsing it, and its journal read
     * from the start; any other new index.json is loaded whole.
     */
    private void reloadIfChanged() throws IOException {
        Snapshot s = current;
        IndexVersion index = indexVersion();
        if (!index.equals(s.index())) {
            java.util.OptionalLong generation = OciLayout.generationInHead(readHead());
            if (generation.isPresent() && generation.getAsLong() <= s.sequence() && generation.getAsLong() >= s.indexGeneration()) {
                current = replay(new Snapshot(s.catalog(), index, generation.getAsLong(), Journal.Version.ABSENT, Journal.START,
                        s.sequence(), s.generation()), Journal.START);
            } else {
                current = load();
            }
            return;
        }
        Journal.Version onDisk = journal.version();
        if (!onDisk.equals(s.journalVersion())) {
            boolean grew = java.util.Objects.equals(onDisk.fileKey(), s.journalVersion().fileKey()) && onDisk.size() >= s.journalEnd();
            current = replay(s, grew ? s.journalEnd() : Journal.START);
        }
    }

    private byte[] readHead() throws IOException {
        try (InputStream in = Files.newInputStream(files.index())) {
            return in.readNBytes(512);
        } catch (NoSuchFileException e) {
            throw new StoreDamagedException("store " + files.root() + " has no index.json; run 'vimgfs fsck --repair'", e);
        }
    }

    /**
     * The snapshot with the journal's frames from {@code from} applied, those the snapshot already
     * includes skipped. A torn or corrupt tail is dropped and reported; a writer cuts it off, so
     * its own frame follows sound ones.
     */
    private Snapshot replay(Snapshot s, long from) throws IOException {
        Journal.Contents contents = journal.read(from);
        Catalog catalog = s.catalog();
        long sequence = s.sequence();
        for (Journal.Frame frame : contents.frames()) {
            if (frame.sequence() > sequence) {
                // drops are recorded: a replay re-decides nothing about what keeps an image
                catalog = catalog.keptBy(Catalog.KEEP_ALL).apply(frame.changes()).committed();
                sequence = frame.sequence();
                queueMetadataSync(frame);
            }
        }
        options.crashHook().accept(CrashPoint.JOURNAL_REPLAYED);
        if (contents.damage().isPresent()) {
            LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": dropped the end of .vimgfs/journal, "
                    + contents.damage().get() + " (a commit torn by a crash, never acknowledged)");
            if (journal.writable()) {
                journal.truncate(contents.end());
            }
        }
        long counter = sequence == s.sequence() ? s.generation() : generation.incrementAndGet();
        return new Snapshot(catalog, s.index(), s.indexGeneration(), journal.version(), contents.end(), sequence, counter);
    }

    private Snapshot load() throws IOException {
        IndexVersion version = indexVersion();
        byte[] bytes = Files.readAllBytes(files.index());
        Optional<CatalogCache.Loaded> cached = CatalogCache.read(cacheFile(), bytes);
        if (cached.isPresent()) {
            long indexGeneration = cached.get().generation();
            return replay(new Snapshot(cached.get().catalog(), version, indexGeneration, Journal.Version.ABSENT, Journal.START,
                    indexGeneration, generation.incrementAndGet()), Journal.START);
        }
        OciLayout.Index index = OciLayout.parseIndex(bytes);
        Map<Digest, StoredImage> images = new HashMap<>();
        Map<ImageName, Digest> names = new HashMap<>();
        List<JsonNode> foreign = new ArrayList<>(index.foreign());
        boolean unreadable = false;
        for (OciLayout.Entry entry : index.entries()) {
            Optional<StoredImage> image = readImage(entry);
            if (image.isEmpty()) {
                foreign.add(entry.raw()); // kept verbatim; fsck reports it
                unreadable = true;
                continue;
            }
            images.put(image.get().layer(), image.get());
            entry.name().ifPresent(name -> names.put(name, image.get().layer()));
        }
        Snapshot fromIndex = new Snapshot(Catalog.of(images.values(), names, foreign), version, index.generation(),
                Journal.Version.ABSENT, Journal.START, index.generation(), generation.incrementAndGet());
        if (!unreadable && journal.writable()) {
            writeCache(bytes, fromIndex.catalog(), index.generation()); // an older store, or another tool's index.json
        }
        return replay(fromIndex, Journal.START);
    }

    private Path cacheFile() {
        return files.workDir().resolve(CatalogCache.FILE);
    }

    /** The next open reads this instead of parsing index.json; a failure only makes that open slower. */
    /**
     * After an index write, without the lock: the cache is keyed by the index's bytes, so one
     * that a later index overtakes is merely not used.
     */
    private void writeCache(Written written) {
        if (written != null) {
            writeCache(written.index(), written.catalog(), written.sequence());
        }
    }

    private void writeCache(byte[] index, Catalog catalog, long indexGeneration) {
        try {
            CatalogCache.write(cacheFile(), index, catalog, indexGeneration, options.crashHook());
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, () -> "store " + files.root() + ": no catalog cache (" + e.getMessage()
                    + "); the next open parses index.json");
        }
    }

    private Optional<StoredImage> readImage(OciLayout.Entry entry) {
        if (entry.cached().isPresent()) {
            return entry.cached();
        }
        try {
            return Optional.of(imagesByManifest.get(entry.manifest(), this::readImageBlobs));
        } catch (UncheckedIOException e) {
            LOG.log(System.Logger.Level.WARNING, "store " + files.root() + ": cannot read image " + entry.manifest()
                    + " (" + e.getCause().getMessage() + "); run 'vimgfs fsck'");
            return Optional.empty();
        }
    }

    private StoredImage readImageBlobs(Digest manifest) {
        try {
            byte[] manifestBytes = files.read(manifest);
            byte[] config = files.read(OciLayout.configOf(manifest, manifestBytes));
            return OciLayout.parseImage(manifest, manifestBytes, config);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private IndexVersion indexVersion() throws IOException {
        try {
            BasicFileAttributes attributes = Files.readAttributes(files.index(), BasicFileAttributes.class);
            return new IndexVersion(attributes.fileKey(), attributes.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS),
                    attributes.size());
        } catch (NoSuchFileException e) {
            throw new StoreDamagedException("store " + files.root() + " has no index.json; run 'vimgfs fsck --repair'", e);
        }
    }

    /** Images sorted for display by their first name, nameless ones last. */
    public static Comparator<ImageInfo> byFirstName() {
        return Comparator.comparing((ImageInfo i) -> i.names().isEmpty())
                .thenComparing(i -> i.names().isEmpty() ? "" : i.names().get(0).toString())
                .thenComparing(ImageInfo::digest);
    }
}
