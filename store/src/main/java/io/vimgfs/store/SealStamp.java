package io.vimgfs.store;

import java.io.IOException;
import java.nio.charset.MalformedInputException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Remembers, in {@code .vimgfs/sealed}, how {@code blobs/sha256} looked (its identity and
 * modification time) when every blob in it was last known sealed, so a mount can skip the
 * sealing pass that opens every blob (3 s for a 10,000-image store with a cold cache).
 *
 * <p>The protocol, all under the store lock:
 * <ol>
 * <li>{@link #sealAll}: the full pass seals every blob ({@link CrashPoint#SEALING}, then
 *     {@link CrashPoint#SEALING_DONE}), and only then writes the stamp of {@code blobs/} as the
 *     pass began, so a blob another tool added meanwhile changed the directory and is looked at
 *     again by the next mount.</li>
 * <li>Around a change of {@code blobs/} by vimgfs (which seals what it places): {@link #before()}
 *     is the stamp if it was the sealed one, and {@link #moveOn} moves the stamp to the directory
 *     as the change left it, in memory only.</li>
 * <li>{@link #persist()} (the index writer, gc) writes a stamp moved on in memory, if
 *     {@code blobs/} is still as the change left it.</li>
 * </ol>
 * The file is a hint: a crash that loses or tears it costs one full pass, never an unsealed blob
 * taken for sealed, since a stamp is never written before what it vouches for.
 */
final class SealStamp {
    private static final String FILE = "sealed";

    private final BlobFiles files;
    private final Path file;
    private final Consumer<CrashPoint> crashHook;
    /** The stamp {@code .vimgfs/sealed} holds while every blob is known sealed; null when unknown. */
    @GuardedBy("store lock")
    private String sealed;
    /** Whether {@link #sealed} moved on since it was written. */
    @GuardedBy("store lock")
    private boolean unwritten;

    SealStamp(BlobFiles files, Consumer<CrashPoint> crashHook) {
        this.files = files;
        this.file = files.workDir().resolve(FILE);
        this.crashHook = crashHook;
    }

    /** Seals every blob unless the stamp says they are; returns how many it changed. */
    @GuardedBy("store lock")
    int sealAll(Map<Digest, BlobAttributes> layers) throws IOException {
        String stamp = blobDirStamp();
        if (stamp.equals(read())) {
            sealed = stamp;
            return 0;
        }
        int changed = files.sealAll(layers, () -> crashHook.accept(CrashPoint.SEALING));
        crashHook.accept(CrashPoint.SEALING_DONE);
        write(stamp);
        return changed;
    }

    /** The stamp of {@code blobs/} now, if it is the sealed one: what {@link #moveOn} may move on from. */
    @GuardedBy("store lock")
    String before() throws IOException {
        String now = blobDirStamp();
        return now.equals(sealed) || now.equals(read()) ? now : null;
    }

    /** After vimgfs changed {@code blobs/}: moves the stamp on in memory, if it was sealed {@code before}. */
    @GuardedBy("store lock")
    void moveOn(String before) {
        if (before == null) {
            return;
        }
        try {
            sealed = blobDirStamp();
            unwritten = true;
        } catch (IOException e) {
            sealed = null; // the next mount does the full pass
        }
    }

    /** Writes a stamp a change moved on, if {@code blobs/} is still as the change left it. */
    @GuardedBy("store lock")
    void persist() {
        if (!unwritten) {
            return;
        }
        unwritten = false;
        try {
            if (blobDirStamp().equals(sealed)) {
                write(sealed);
            }
        } catch (IOException e) {
            sealed = null; // the next mount does the full pass
        }
    }

    @GuardedBy("store lock")
    boolean isUnwritten() {
        return unwritten;
    }

    private String blobDirStamp() throws IOException {
        BasicFileAttributes attributes = Files.readAttributes(files.blobDir(), BasicFileAttributes.class);
        return attributes.fileKey() + " " + attributes.lastModifiedTime().to(TimeUnit.NANOSECONDS);
    }

    private String read() throws IOException {
        try {
            return Files.readString(file).strip();
        } catch (NoSuchFileException | MalformedInputException e) {
            return null;
        }
    }

    /** A hint only, written after every blob it vouches for is sealed: a crash that tears it costs one full pass. */
    private void write(String stamp) throws IOException {
        sealed = stamp;
        Files.writeString(file, stamp + "\n");
    }
}
