package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.UUID;

/**
 * The files of a store directory: {@code blobs/sha256/}, {@code index.json}, and vimgfs's working
 * directory {@code .vimgfs/} (staging files, the lock). Every write here is staged, fsynced and
 * renamed into place, with the directory fsynced after, so a crash leaves old or new, never half.
 */
final class BlobFiles {
    static final String WORK_DIR = ".vimgfs";
    static final String STAGING_SUFFIX = ".part";

    private final Path root;
    private final Path blobs;
    private final Path work;
    private final Path staging;

    BlobFiles(Path root) {
        this.root = root;
        this.blobs = root.resolve("blobs").resolve(Digest.ALGORITHM);
        this.work = root.resolve(WORK_DIR);
        this.staging = work.resolve("staging");
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

    void createDirectories() throws IOException {
        Files.createDirectories(blobs);
        Files.createDirectories(staging);
    }

    /** A new unique staging path; the file is not created. */
    Path newStagingPath() {
        return staging.resolve(UUID.randomUUID() + STAGING_SUFFIX);
    }

    byte[] read(Digest digest) throws IOException {
        return Files.readAllBytes(blob(digest));
    }

    /** Moves a fsynced staged file into blobs/ under its digest. The caller syncs the directory. */
    void install(Path staged, Digest digest) throws IOException {
        atomicMove(staged, blob(digest));
    }

    /** Writes a small blob (manifest, config) durably, unless it is already there. */
    Digest writeBlob(byte[] content) throws IOException {
        Digest digest = Digest.of(sha256(content));
        if (!exists(digest)) {
            Path staged = newStagingPath();
            writeSynced(staged, content);
            install(staged, digest);
        }
        return digest;
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
        Files.deleteIfExists(blob(digest));
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
