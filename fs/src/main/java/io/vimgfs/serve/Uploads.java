package io.vimgfs.serve;

import io.vimgfs.serve.RegistryError.Code;
import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * Blob uploads between their {@code POST} and the manifest that names them. Each is a store
 * {@link Upload} in the staging area, hashed while it streams; a finished one is checked against
 * its digest and then waits, sealed, for a manifest to place it. Nothing here is in the catalog:
 * a server killed mid-upload leaves staging files that gc removes, and what a client was told it
 * pushed is durable only once its manifest is acknowledged (then it went through the store's commit).
 *
 * <p>Bounded: at most {@code maxUploads} sessions and finished blobs at once, at most
 * {@code maxBytes} in them, never writing the store's disk below {@code reserveBytes} free; idle
 * sessions and unclaimed blobs are dropped by {@link #expire}.
 */
final class Uploads implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Uploads.class.getName());
    private static final int BUFFER = 1 << 20;
    private static final long SPACE_CHECK_EVERY = 64L << 20;

    record Limits(int maxUploads, long maxBytes, long reserveBytes, Duration idle, Duration unclaimed) {
        static Limits defaults() {
            return new Limits(64, Long.MAX_VALUE, 1L << 30, Duration.ofMinutes(10), Duration.ofHours(1));
        }
    }

    /** An upload in progress: its id is the last segment of its Location. */
    static final class Session {
        final String id;
        final String repository;
        final Upload upload;
        private long offset;
        private Instant touched;

        private Session(String id, String repository, Upload upload, Instant now) {
            this.id = id;
            this.repository = repository;
            this.upload = upload;
            this.touched = now;
        }

        synchronized long offset() {
            return offset;
        }
    }

    /** A blob whose digest was checked, waiting for a manifest. */
    record Finished(Upload upload, long size, Instant at) {
    }

    private final ImageStore store;
    private final Limits limits;
    private final Clock clock;
    private final Map<String, Session> sessions = new ConcurrentHashMap<>();
    private final Map<Digest, Finished> finished = new ConcurrentHashMap<>();

    Uploads(ImageStore store, Limits limits, Clock clock) {
        this.store = store;
        this.limits = limits;
        this.clock = clock;
    }

    Session start(String repository) throws IOException, RegistryError {
        if (sessions.size() + finished.size() >= limits.maxUploads()) {
            throw new RegistryError(Code.TOOMANYREQUESTS, "too many uploads in progress (at most "
                    + limits.maxUploads() + "): finish or cancel some, or wait for idle ones to expire");
        }
        Session session = new Session(UUID.randomUUID().toString(), repository, store.beginUpload(), clock.instant());
        sessions.put(session.id, session);
        return session;
    }

    Session session(String repository, String id) throws RegistryError {
        Session session = sessions.get(id);
        if (session == null || !session.repository.equals(repository)) {
            throw new RegistryError(Code.BLOB_UPLOAD_UNKNOWN, "no upload " + id + " in progress for " + repository);
        }
        return session;
    }

    /**
     * Appends a request body to the session; with {@code start} (a PATCH's Content-Range) it must
     * begin where the upload ends. {@code length} is the declared Content-Length, or -1.
     */
    long append(Session session, InputStream body, OptionalLong start, long length) throws IOException, RegistryError {
        synchronized (session) {
            if (start.isPresent() && start.getAsLong() != session.offset) {
                throw new RegistryError(Code.RANGE_INVALID, "this chunk starts at " + start.getAsLong()
                        + " but the upload has " + session.offset + " bytes: send chunks in order");
            }
            if (length > 0) {
                requireRoom(length);
            }
            byte[] buffer = new byte[BUFFER];
            long sinceCheck = 0;
            int n;
            while ((n = body.read(buffer)) > 0) {
                sinceCheck += n;
                if (sinceCheck >= SPACE_CHECK_EVERY) {
                    requireRoom(sinceCheck);
                    sinceCheck = 0;
                }
                session.offset += session.upload.write(ByteBuffer.wrap(buffer, 0, n), session.offset);
            }
            session.touched = clock.instant();
            return session.offset;
        }
    }

    /** Ends a session: its bytes must hash to {@code expected}; then the blob waits for its manifest. */
    Digest finish(Session session, Digest expected) throws IOException, RegistryError {
        sessions.remove(session.id);
        synchronized (session) {
            Digest actual;
            try {
                actual = session.upload.seal();
            } catch (IOException e) {
                session.upload.abandon();
                throw e;
            }
            if (!actual.equals(expected)) {
                session.upload.abandon();
                throw new RegistryError(Code.DIGEST_INVALID, "the uploaded bytes hash to " + actual + ", not " + expected);
            }
            if (store.image(actual).isPresent()
                    || finished.putIfAbsent(actual, new Finished(session.upload, session.offset, clock.instant())) != null) {
                session.upload.abandon(); // the same bytes are here already
            }
            return actual;
        }
    }

    void cancel(Session session) throws IOException {
        sessions.remove(session.id);
        synchronized (session) {
            session.upload.abandon();
        }
    }

    Optional<Finished> finished(Digest digest) {
        return Optional.ofNullable(finished.get(digest));
    }

    /** Takes a finished blob for placing (the placement consumes it), or empty. */
    Optional<Upload> claim(Digest digest) {
        return Optional.ofNullable(finished.remove(digest)).map(Finished::upload);
    }

    /** Drops a finished blob no manifest took; false if there was none. */
    boolean discard(Digest digest) throws IOException {
        Finished gone = finished.remove(digest);
        if (gone != null) {
            gone.upload().abandon();
        }
        return gone != null;
    }

    /** Drops sessions idle past their limit and finished blobs unclaimed past theirs. */
    void expire() {
        Instant now = clock.instant();
        sessions.values().removeIf(session -> {
            synchronized (session) {
                boolean idle = session.touched.plus(limits.idle()).isBefore(now);
                if (idle) {
                    LOG.info("upload " + session.id + " to " + session.repository + " idle since " + session.touched
                            + ": dropped");
                    quietly(session.upload);
                }
                return idle;
            }
        });
        finished.entrySet().removeIf(entry -> {
            boolean stale = entry.getValue().at().plus(limits.unclaimed()).isBefore(now);
            if (stale) {
                LOG.info("blob " + entry.getKey() + " pushed at " + entry.getValue().at() + " and named by no manifest: dropped");
                quietly(entry.getValue().upload());
            }
            return stale;
        });
    }

    private void requireRoom(long more) throws IOException, RegistryError {
        long held = finished.values().stream().mapToLong(Finished::size).sum()
                + sessions.values().stream().mapToLong(Session::offset).sum();
        if (held + more > limits.maxBytes()) {
            throw new RegistryError(Code.SIZE_INVALID, 413, "uploads in progress would hold more than "
                    + limits.maxBytes() + " bytes (--max-upload-bytes)");
        }
        long usable = Files.getFileStore(store.root()).getUsableSpace();
        if (usable - more < limits.reserveBytes()) {
            throw new RegistryError(Code.SIZE_INVALID, 413, "the store's disk has " + usable + " bytes free: "
                    + more + " more would leave less than the " + limits.reserveBytes() + " it keeps free");
        }
    }

    private static void quietly(Upload upload) {
        try {
            upload.abandon();
        } catch (IOException e) {
            LOG.warning("could not drop an upload: " + e.getMessage());
        }
    }

    @Override
    public void close() {
        sessions.values().forEach(session -> quietly(session.upload));
        finished.values().forEach(blob -> quietly(blob.upload()));
        sessions.clear();
        finished.clear();
    }
}
