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
 * {@link StoreLock}, reload if another process committed, build a new catalog, write index.json
 * atomically and then publish the new snapshot. Blobs are always durable in {@code blobs/}
 * before index.json names them, so a crash leaves at most orphans, which GC removes.
 */
public final class ImageStore implements Closeable {
    private static final System.Logger LOG = System.getLogger(ImageStore.class.getName());
    private static final Pattern DIGEST_PREFIX = Pattern.compile("(?:sha256:)?([0-9a-f]{3,64})");
    private static final Pattern OTHER_DIGEST = Pattern.compile("[a-z0-9]+:[0-9a-fA-F]{32,}");
    private static final int COPY_CHUNK = 1 << 20;
    private static final int BATCH_COMMIT = 1000;
    private static final String ADD = "add an image";

    private final BlobFiles files;
    private final StoreOptions options;
    private final StoreLock lock;
    private final GarbageCollector collector;
    /** Images read from manifest and config blobs, so reloading index.json never re-reads them. */
    private final Cache<Digest, StoredImage> imagesByManifest =
            Caffeine.newBuilder().maximumSize(100_000).build();
    private final AtomicLong generation = new AtomicLong();
    private volatile Snapshot current;

    /** A catalog and the version of index.json it was read from. */
    private record Snapshot(Catalog catalog, IndexVersion version, long generation) {
    }

    /** Identifies one index.json file: every commit renames a new file into place. */
    private record IndexVersion(Object fileKey, long modifiedNanos, long size) {
    }

    private ImageStore(BlobFiles files, StoreOptions options, StoreLock lock) {
        this.files = files;
        this.options = options;
        this.lock = lock;
        this.collector = new GarbageCollector(files, options.crashHook());
    }

    public static ImageStore open(Path root) throws IOException {
        return open(root, StoreOptions.defaults());
    }

    /**
     * Opens the store at {@code root}, creating it when the directory is absent or empty. A store
     * on a read-only filesystem opens read-only: it takes no lock (no one can write to it) and
     * every change fails with {@link StoreReadOnlyException}.
     */
    public static ImageStore open(Path root, StoreOptions options) throws IOException {
        Path absolute = root.toAbsolutePath().normalize();
        BlobFiles files = new BlobFiles(absolute);
        refuseForeignDirectory(files);
        if (Files.isDirectory(absolute) && Files.getFileStore(absolute).isReadOnly()) {
            ImageStore store = new ImageStore(files, options, StoreLock.readOnly(absolute));
            store.checkLayout();
            store.current = store.load();
            return store;
        }
        files.createDirectories(options.audience());
        StoreLock lock = StoreLock.open(files.workDir().resolve("lock"), absolute);
        ImageStore store = new ImageStore(files, options, lock);
        try {
            lock.exclusive("open it", () -> {
                store.initialiseLayout();
                store.current = store.load();
                return null;
            });
        } catch (IOException | RuntimeException e) {
            lock.close();
            throw e;
        }
        return store;
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

    /** Rereads index.json if another process replaced it; returns whether anything changed. */
    public boolean refresh() throws IOException {
        IndexVersion onDisk = indexVersion();
        if (onDisk.equals(current.version())) {
            return false;
        }
        return lock.consistent(() -> {
            Snapshot before = current;
            reloadIfChanged();
            return current != before;
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
                Map<Digest, StoredImage> admitted = new HashMap<>();
                for (Staged s : staged) {
                    StoredImage image = admit(catalog, admitted, s);
                    admitted.put(image.layer(), image);
                    names.add(Map.entry(s.reference().name(), image));
                }
                return catalog.withNames(names);
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
            Catalog after = change(ADD, catalog -> catalog.withName(reference.name(), admit(catalog, Map.of(), staged)));
            return after.info(after.image(staged.digest()).orElseThrow());
        } finally {
            upload.abandon();
        }
    }

    /** Seals the upload, checks a pinned digest, and probes content the store does not hold yet. */
    private Staged stage(Upload upload, Reference reference) throws IOException {
        options.crashHook().accept(CrashPoint.STAGED);
        Digest digest = upload.seal(n -> { });
        options.crashHook().accept(CrashPoint.STAGED_SYNCED);
        long size = upload.size();
        if (reference.pin().isPresent() && !reference.pin().get().equals(digest)) {
            throw new DigestMismatchException(reference.pin().get(), digest);
        }
        Optional<StoredImage> known = current.catalog().image(digest);
        ProbeResult probe = known.isPresent() ? null : probe(upload.channel(), size);
        Optional<Digest> backing = known.isPresent() ? known.get().backing() : backingDigest(probe);
        return new Staged(upload, reference, digest, size, probe, backing);
    }

    /**
     * Under the lock: the stored image for staged content, moving its layer into blobs/ and writing
     * its manifest if it is new. {@code admitted} holds images of the same batch not yet committed.
     */
    private StoredImage admit(Catalog catalog, Map<Digest, StoredImage> admitted, Staged staged) throws IOException {
        Optional<Digest> backing = staged.backing();
        if (backing.isPresent() && catalog.image(backing.get()).isEmpty() && !admitted.containsKey(backing.get())) {
            throw new ImageRejectedException(ImageRejectedException.Reason.MISSING_BACKING,
                    "backing image " + backing.get() + " is not in the store; add the base image first");
        }
        StoredImage image = catalog.image(staged.digest()).orElse(admitted.get(staged.digest()));
        if (image != null) {
            return image;
        }
        // Known content can lose its image before we hold the lock: then it is new again.
        ProbeResult probe = staged.probe() != null ? staged.probe() : probe(staged.upload().channel(), staged.size());
        if (backing.isPresent()) {
            checkBackingFormat(probe, catalog.image(backing.get()).orElseGet(() -> admitted.get(backing.get())));
        }
        boolean newBlob = !files.exists(staged.digest());
        staged.upload().verifySealed(); // the bytes published are the bytes hashed
        files.install(staged.upload().file(), staged.digest(),
                Optional.of(new BlobAttributes(staged.digest(), probe.format(), probe.virtualSize(), backing)));
        if (newBlob) {
            created.add(staged.digest());
        }
        files.syncBlobDir();
        options.crashHook().accept(CrashPoint.LAYER_PLACED);
        image = writeMetadata(staged.digest(), staged.size(), probe, backing);
        options.crashHook().accept(CrashPoint.MANIFEST_WRITTEN);
        return image;
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
        byte[] config = OciLayout.configJson(probe.format(), probe.virtualSize(), probe.clusterSize(), backing, created);
        Digest configDigest = writeBlob(config);
        byte[] manifest = OciLayout.manifestJson(configDigest, config.length, probe.format(), layer, size, created);
        Digest manifestDigest = writeBlob(manifest);
        files.syncBlobDir();
        return new StoredImage(layer, size, probe.format(), probe.virtualSize(), probe.clusterSize(), backing,
                created, manifestDigest, manifest.length, configDigest);
    }

    /** Writes a small blob, remembering it in {@link #created} if this wrote it. */
    private Digest writeBlob(byte[] content) throws IOException {
        Digest digest = Digest.of(BlobFiles.sha256(content));
        if (!files.exists(digest)) {
            files.writeBlob(content);
            created.add(digest);
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
            Catalog after = change("place an image", catalog -> catalog.withName(reference.name(),
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
        boolean newBlob = !files.exists(staged.digest());
        staged.upload().verifySealed(); // the bytes published are the bytes hashed
        files.install(staged.upload().file(), staged.digest(),
                Optional.of(new BlobAttributes(staged.digest(), probe.format(), probe.virtualSize(), backing)));
        if (newBlob) {
            created.add(staged.digest());
        }
        files.syncBlobDir();
        options.crashHook().accept(CrashPoint.LAYER_PLACED);
        writeBlob(config);
        writeBlob(manifest);
        files.syncBlobDir();
        options.crashHook().accept(CrashPoint.MANIFEST_WRITTEN);
        return described;
    }

    // ---- names and removal ---------------------------------------------------------------

    /** Gives an existing image (by name or digest) another name, moving the name if it is taken. */
    public ImageInfo tag(String source, ImageName newName) throws IOException {
        Digest[] tagged = new Digest[1];
        Catalog after = change("name an image", catalog -> {
            tagged[0] = resolve(catalog, source).digest();
            return catalog.withName(newName, catalog.image(tagged[0]).orElseThrow());
        });
        return after.info(after.image(tagged[0]).orElseThrow());
    }

    /** Removes a name; the image goes with its last name unless an overlay still needs it. */
    public void untag(ImageName name) throws IOException {
        change("remove a name", catalog -> {
            if (catalog.digestOf(name).isEmpty()) {
                throw new ImageNotFoundException(name.toString());
            }
            return catalog.withoutNames(List.of(name));
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
            return catalog.withoutNames(catalog.namesOf(digest));
        });
        return after.image(digest).isEmpty();
    }

    // ---- group commit --------------------------------------------------------------------

    /** A change to the catalog, made under the store lock; it may install blobs first. */
    private interface Change {
        Catalog apply(Catalog catalog) throws IOException;
    }

    /** A change waiting for a commit, and its outcome once one is done. Fields are guarded by the lock. */
    private static final class PendingChange {
        final Change change;
        Catalog result;
        Exception failure;
        boolean done;

        PendingChange(Change change) {
            this.change = change;
        }
    }

    private final Queue<PendingChange> pending = new ConcurrentLinkedQueue<>();
    /**
     * Blobs the commit under way created (layers, configs, manifests), in order. Guarded by the lock.
     * A change that fails, or a commit whose index.json is not written (a full disk), deletes
     * its own at once: nothing names them, and GC may not run for a long time.
     */
    private final List<Digest> created = new ArrayList<>();

    /**
     * Applies a change and returns the catalog right after it. Changes that queue up while another
     * thread holds the lock are applied by whichever thread takes the lock next, all in one
     * index.json commit (group commit): one fsync for many names, not one each. A change that
     * fails is skipped; the others still commit.
     */
    private Catalog change(String purpose, Change change) throws IOException {
        PendingChange mine = new PendingChange(change);
        pending.add(mine);
        lock.exclusive(purpose, () -> {
            if (!mine.done) {
                commitPending();
            }
            return null;
        });
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
        Catalog catalog = current.catalog();
        IndexVersion before = current.version();
        List<PendingChange> batch = new ArrayList<>();
        created.clear();
        for (PendingChange next = pending.poll(); next != null; next = pending.poll()) {
            batch.add(next);
            int mark = created.size();
            try {
                catalog = next.change.apply(catalog);
                next.result = catalog;
            } catch (IOException | RuntimeException e) {
                next.failure = e;
                deleteCreatedSince(mark, e);
            }
        }
        try {
            commit(catalog);
        } catch (IOException | RuntimeException e) {
            batch.forEach(p -> p.failure = p.failure != null ? p.failure : e);
            if (indexVersion().equals(before)) {
                deleteCreatedSince(0, e); // once index.json is replaced it names them: they stay
            }
        } finally {
            created.clear();
            batch.forEach(p -> p.done = true);
        }
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

    // ---- maintenance ---------------------------------------------------------------------

    public GcReport collectGarbage(boolean dryRun) throws IOException {
        return lock.exclusive("collect garbage", () -> {
            reloadIfChanged();
            return collector.collect(current.catalog(), dryRun);
        });
    }

    /**
     * Deletes a blob that lost its image while some process had it open, once nothing references
     * it and no one (this process included) has it open any more; otherwise leaves it for a later
     * gc. The mount calls this when it closes its own descriptor on an image that has no names.
     */
    public boolean collectIfUnused(Digest digest) throws IOException {
        return lock.exclusive("collect an unused blob", () -> {
            reloadIfChanged();
            return collector.collectIfUnused(current.catalog(), digest);
        });
    }

    /**
     * Deletes the blobs this process kept because someone had them open when their image went,
     * once they are closed. Cheap when there are none; the mount calls it every second.
     */
    public int collectClosed() throws IOException {
        if (!collector.keptAny()) {
            return 0;
        }
        return lock.exclusive("collect closed blobs", () -> {
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
     */
    public int sealBlobs() throws IOException {
        return lock.exclusive("seal its blobs", () -> {
            reloadIfChanged();
            return files.sealAll(layerAttributes());
        });
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
            StoreChecker.Result result = new StoreChecker(files).check(Files.readAllBytes(files.index()), progress);
            if (!repair || result.report().clean()) {
                return result.report();
            }
            List<String> repairs = new ArrayList<>();
            for (JsonNode dropped : result.broken()) {
                repairs.add("dropped index entry " + describe(dropped) + " (it points at a missing or corrupt blob)");
            }
            if (!result.broken().isEmpty()) {
                files.replaceIndex(OciLayout.indexJson(result.healthy()), () -> { });
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
            for (GcReport.Removal removal : collector.collect(current.catalog(), false).removals()) {
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
        try (FileChannel channel = FileChannel.open(record, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            FileLock probe = channel.tryLock();
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

    @Override
    public void close() throws IOException {
        lock.close();
    }

    // ---- snapshots -----------------------------------------------------------------------

    /** Writes the catalog to index.json, publishes it, and deletes what the change made garbage. */
    private void commit(Catalog next) throws IOException {
        if (next == current.catalog()) {
            return;
        }
        files.replaceIndex(OciLayout.indexJson(next), () -> options.crashHook().accept(CrashPoint.INDEX_STAGED));
        Catalog committed = next.committed();
        current = new Snapshot(committed, indexVersion(), generation.incrementAndGet());
        options.crashHook().accept(CrashPoint.INDEX_REPLACED);
        collector.sweepDropped(next.dropped(), committed);
    }

    private void reloadIfChanged() throws IOException {
        if (!indexVersion().equals(current.version())) {
            current = load();
        }
    }

    private Snapshot load() throws IOException {
        IndexVersion version = indexVersion();
        byte[] bytes = Files.readAllBytes(files.index());
        OciLayout.Index index = OciLayout.parseIndex(bytes);
        Map<Digest, StoredImage> images = new HashMap<>();
        Map<ImageName, Digest> names = new HashMap<>();
        List<JsonNode> foreign = new ArrayList<>(index.foreign());
        for (OciLayout.Entry entry : index.entries()) {
            Optional<StoredImage> image = readImage(entry);
            if (image.isEmpty()) {
                foreign.add(entry.raw()); // kept verbatim; fsck reports it
                continue;
            }
            images.put(image.get().layer(), image.get());
            entry.name().ifPresent(name -> names.put(name, image.get().layer()));
        }
        return new Snapshot(Catalog.of(images.values(), names, foreign), version, generation.incrementAndGet());
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
