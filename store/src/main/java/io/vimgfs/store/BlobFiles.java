package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

/**
 * The files of a store directory: {@code blobs/sha256/}, {@code index.json}, and vimgfs's working
 * directory {@code .vimgfs/} (staging files, the lock). Every write here is staged, fsynced and
 * renamed into place, with the directory fsynced after, so a crash leaves old or new, never half.
 *
 * <p>A placed blob is sealed: its {@code user.vimgfs.*} xattrs (layers) and mode 0444 are set on
 * it, then the immutable flag, so not even root can change it; only {@link #delete} clears the flag.
 */
final class BlobFiles {
    private static final System.Logger LOG = System.getLogger(BlobFiles.class.getName());
    static final String WORK_DIR = ".vimgfs";
    static final String STAGING_SUFFIX = ".part";

    private final Path root;
    private final Path blobs;
    private final Path work;
    private final Path staging;
    private final ImmutableFlag immutable;
    private final AtomicBoolean xattrsWarned = new AtomicBoolean();

    BlobFiles(Path root) {
        this.root = root;
        this.blobs = root.resolve("blobs").resolve(Digest.ALGORITHM);
        this.work = root.resolve(WORK_DIR);
        this.staging = work.resolve("staging");
        this.immutable = new ImmutableFlag(root);
    }

    Path root() {
        return root;
    }

    Path blobDir() {
        return blobs;
    }

    Path stagingDir() {
        return staging;
    }

    Path workDir() {
        return work;
    }

    Path index() {
        return root.resolve(OciLayout.INDEX_FILE);
    }

    Path layoutFile() {
        return root.resolve(OciLayout.LAYOUT_FILE);
    }

    Path blob(Digest digest) {
        return blobs.resolve(digest.hex());
    }

    boolean exists(Digest digest) {
        return Files.exists(blob(digest));
    }

    /** Refuses a path that is not a store and could not become one without losing what it holds. */
    void refuseForeign() throws IOException {
        if (Files.exists(root) && !Files.isDirectory(root)) {
            throw new StoreDamagedException("store " + root + " is not a directory");
        }
        if (Files.isDirectory(root) && !Files.exists(layoutFile())) {
            try (Stream<Path> entries = Files.list(root)) {
                if (entries.anyMatch(p -> !p.getFileName().toString().equals(WORK_DIR)
                        && !p.getFileName().toString().equals("blobs"))) {
                    throw new StoreDamagedException("store " + root + " is a non-empty directory without an "
                            + "oci-layout file: not a vimgfs store; choose an empty or new directory");
                }
            }
        }
    }

    /** Writes the oci-layout file and an empty index.json where they are missing (a new store). */
    void initialiseLayout() throws IOException {
        if (!Files.exists(layoutFile())) {
            writeSynced(layoutFile(), OciLayout.LAYOUT_JSON);
        }
        if (!Files.exists(index())) {
            replaceIndex(OciLayout.emptyIndexJson(), () -> { });
        }
        checkLayout();
    }

    /** Fails unless the oci-layout file says a layout version this store reads. */
    void checkLayout() throws IOException {
        if (!Files.exists(layoutFile())) {
            throw new StoreDamagedException("store " + root + " has no oci-layout file: not a vimgfs store"
                    + " (and its filesystem is read-only, so it cannot be created)");
        }
        String layout = Files.readString(layoutFile());
        if (!layout.replace(" ", "").contains("\"imageLayoutVersion\":\"1.0.0\"")) {
            throw new StoreDamagedException("store " + root + " has an unsupported oci-layout: " + layout.strip());
        }
    }

    /**
     * Creates what is missing and applies the permission policy: the audience's modes when given,
     * private for a new store, and for an existing store opened without one, its modes as they are.
     */
    void createDirectories(Optional<StoreAudience> audience) throws IOException {
        boolean created = !Files.exists(layoutFile());
        Optional<StoreAudience> wanted = audience.isPresent() || !created ? audience : Optional.of(new StoreAudience.Private());
        Optional<StorePermissions> policy = wanted.isPresent()
                ? Optional.of(StorePermissions.of(root, wanted.get())) : Optional.empty();
        Files.createDirectories(blobs, StorePermissions.privateDirectory()); // private until the policy says more
        Files.createDirectories(staging, StorePermissions.privateDirectory());
        if (policy.isPresent()) {
            policy.get().apply(this);
        } else {
            StorePermissions.restrictWorkDir(this);
        }
    }

    /** A new unique staging path; the file is not created. */
    Path newStagingPath() {
        return staging.resolve(UUID.randomUUID() + STAGING_SUFFIX);
    }

    /** The staging file of a resumable download of {@code digest}: one per blob, so a rerun finds it. */
    Path downloadFile(Digest digest) {
        return staging.resolve(Digest.ALGORITHM + "-" + digest.hex() + PartialDownload.DATA_SUFFIX);
    }

    /** The range map beside {@link #downloadFile}. */
    Path downloadRanges(Digest digest) {
        return staging.resolve(Digest.ALGORITHM + "-" + digest.hex() + PartialDownload.RANGES_SUFFIX);
    }

    byte[] read(Digest digest) throws IOException {
        return Files.readAllBytes(blob(digest));
    }

    /**
     * Moves a fsynced staged file into blobs/ under its digest and seals it. A sealed blob already
     * there stays (an immutable file cannot be renamed onto; it was verified when it was sealed)
     * and the staged copy is dropped; an unsealed one may have been changed, so the verified
     * staged copy replaces it. The caller syncs the directory.
     */
    void install(Path staged, Digest digest, Optional<BlobAttributes> attributes) throws IOException {
        Path target = blob(digest);
        if (isSealed(target)) {
            if (Files.size(target) == Files.size(staged)) {
                Files.delete(staged);
                seal(target, attributes);
                return;
            }
            LOG.log(System.Logger.Level.WARNING, "store " + root + ": replacing damaged blob " + digest
                    + " (its size is not that of its content)");
            delete(target);
        }
        describe(staged, attributes);
        atomicMove(staged, target);
        immutable.set(target);
    }

    /**
     * Writes a small blob (manifest, config) unless it is already there, sealed; {@code durable} fsyncs it before it
     * is renamed into place, else the caller makes it durable ({@link #syncFile}) before the
     * index on disk names it. The caller syncs the directory either way.
     */
    Digest writeBlob(byte[] content, boolean durable) throws IOException {
        Digest digest = Digest.of(sha256(content));
        if (!isSealed(blob(digest))) {
            Path staged = newStagingPath();
            try (FileChannel channel = FileChannel.open(staged, Set.of(StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE), StorePermissions.privateFile())) {
                ByteBuffer buffer = ByteBuffer.wrap(content);
                while (buffer.hasRemaining()) {
                    channel.write(buffer);
                }
                if (durable) {
                    channel.force(true);
                }
            }
            install(staged, digest, Optional.empty());
        }
        return digest;
    }

    /** Fsyncs a blob's bytes; false if it is gone (collected meanwhile: nothing to make durable). */
    boolean syncFile(Digest digest) throws IOException {
        try (FileChannel channel = FileChannel.open(blob(digest), StandardOpenOption.READ)) {
            channel.force(true);
            return true;
        } catch (NoSuchFileException e) {
            return false;
        }
    }

    private boolean isSealed(Path blob) throws IOException {
        try {
            return immutable.get(blob) == ImmutableFlag.State.SET;
        } catch (NoSuchFileException e) {
            return false;
        }
    }

    /**
     * Gives a placed blob what {@link #install} gives it — xattrs, mode 0444, the immutable flag —
     * touching only what is missing, so a store of 10,000 sealed blobs costs one ioctl each.
     * Returns whether it changed anything.
     */
    boolean seal(Path blob, Optional<BlobAttributes> attributes) throws IOException {
        ImmutableFlag.State state = immutable.get(blob);
        boolean attributesMissing = attributes.isPresent() && !attributesPresent(blob, attributes.get());
        if (state == ImmutableFlag.State.SET && !attributesMissing) {
            return false;
        }
        boolean modeWrong = !Files.getPosixFilePermissions(blob, LinkOption.NOFOLLOW_LINKS).equals(StorePermissions.BLOB);
        if (state == ImmutableFlag.State.UNSUPPORTED && !attributesMissing && !modeWrong) {
            return false;
        }
        if (state == ImmutableFlag.State.SET) {
            immutable.clear(blob); // an immutable file takes no new xattrs
        }
        describe(blob, attributesMissing ? attributes : Optional.empty());
        immutable.set(blob);
        return true;
    }

    /**
     * Seals every blob of the store; {@code layers} gives the xattrs of each image's layer, and
     * {@code afterFirst} runs once the first blob is changed (a crash point). Returns how many changed.
     */
    int sealAll(Map<Digest, BlobAttributes> layers, Runnable afterFirst) throws IOException {
        int changed = 0;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(blobs)) {
            for (Path blob : entries) {
                String name = blob.getFileName().toString();
                if (Digest.isHex64(name) && Files.isRegularFile(blob, LinkOption.NOFOLLOW_LINKS)
                        && seal(blob, Optional.ofNullable(layers.get(new Digest(name))))) {
                    if (changed++ == 0) {
                        afterFirst.run();
                    }
                }
            }
        }
        return changed;
    }

    /** Whether a blob has its immutable flag: SET, CLEAR, or UNSUPPORTED where the filesystem has none. */
    ImmutableFlag.State immutability(Path blob) throws IOException {
        return immutable.get(blob);
    }

    /** The xattrs (if any), then mode 0444: both before the flag, which forbids changing either. */
    private void describe(Path file, Optional<BlobAttributes> attributes) throws IOException {
        if (attributes.isPresent()) {
            try {
                attributes.get().writeTo(file);
            } catch (FileSystemException e) {
                warnNoXattrs(e);
            }
        }
        Files.setPosixFilePermissions(file, StorePermissions.BLOB);
    }

    private boolean attributesPresent(Path blob, BlobAttributes attributes) throws IOException {
        try {
            return attributes.presentOn(blob);
        } catch (FileSystemException e) {
            warnNoXattrs(e);
            return true; // nothing we could add
        }
    }

    private void warnNoXattrs(FileSystemException e) throws FileSystemException {
        if (!"Operation not supported".equals(e.getReason())) {
            throw e;
        }
        if (!xattrsWarned.getAndSet(true)) {
            LOG.log(System.Logger.Level.WARNING, "store " + root + ": the filesystem has no user xattrs; "
                    + "getfattr on images answers only through the mount's links");
        }
    }

    /** Replaces index.json atomically: write, fsync, rename, fsync the directory. */
    void replaceIndex(byte[] content, Runnable afterStaged) throws IOException {
        Path staged = work.resolve(OciLayout.INDEX_FILE + "." + UUID.randomUUID() + ".tmp");
        writeSynced(staged, content);
        afterStaged.run();
        atomicMove(staged, index());
        syncDirectory(root);
    }

    void delete(Digest digest) throws IOException {
        delete(blob(digest));
    }

    /** Deletes a store file; a blob's immutable flag is cleared first, here and nowhere else. */
    void delete(Path file) throws IOException {
        if (blobs.equals(file.getParent())) {
            try {
                immutable.clear(file);
            } catch (NoSuchFileException e) {
                return;
            }
        }
        Files.deleteIfExists(file);
    }

    void syncBlobDir() throws IOException {
        syncDirectory(blobs);
    }

    static void writeSynced(Path file, byte[] content) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer buffer = ByteBuffer.wrap(content);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
            channel.force(true);
        }
    }

    static void syncDirectory(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    private static void atomicMove(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("the store's working directory and blobs/ must be on one filesystem", e);
        } catch (NoSuchFileException e) {
            throw new IOException("staged file vanished before it was placed: " + from, e);
        }
    }

    static byte[] sha256(byte[] content) {
        return newSha256().digest(content);
    }

    static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }
}
