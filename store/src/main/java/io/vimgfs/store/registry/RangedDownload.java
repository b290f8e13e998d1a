package io.vimgfs.store.registry;

import io.vimgfs.store.Digest;
import io.vimgfs.store.PartialDownload;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongConsumer;

/**
 * The fetch of one blob's missing ranges into a {@link PartialDownload}: a few concurrent GETs,
 * each for one single range, each checked to be a 206 with exactly the Content-Range asked for,
 * resumed within its range when a connection breaks. A 200 (a server that ignores Range) stops
 * the fetch and says so; the caller then streams the blob whole. Transport rules (redirects without
 * Authorization, a fresh token on 401, 429 and Retry-After) are {@link RegistryClient#send}'s.
 */
final class RangedDownload {
    /** How a fetch ended without an error. */
    enum Outcome { COMPLETE, RANGES_IGNORED }

    private static final int BUFFER = 1 << 20;

    private final RegistryClient client;
    private final String repository;
    private final Digest digest;
    private final PartialDownload partial;
    private final RegistryClient.Options options;
    private final LongConsumer progress;
    private final String display;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicBoolean ignored = new AtomicBoolean();

    RangedDownload(RegistryClient client, String repository, Digest digest, PartialDownload partial,
            RegistryClient.Options options, LongConsumer progress, String display) {
        this.client = client;
        this.repository = repository;
        this.digest = digest;
        this.partial = partial;
        this.options = options;
        this.progress = progress;
        this.display = display;
    }

    /** Fetches every range the partial download lacks, {@code inFlight} at a time. */
    Outcome run(int inFlight) throws IOException {
        Queue<Integer> missing = new ConcurrentLinkedQueue<>();
        for (int i = 0; i < partial.rangeCount(); i++) {
            if (!partial.isDone(i)) {
                missing.add(i);
            }
        }
        int workers = Math.max(1, Math.min(inFlight, missing.size()));
        ExecutorService pool = Executors.newFixedThreadPool(workers, runnable -> {
            Thread thread = new Thread(runnable, "vimgfs-range");
            thread.setDaemon(true);
            return thread;
        });
        try {
            List<Future<Void>> running = new ArrayList<>();
            for (int w = 0; w < workers; w++) {
                running.add(pool.submit(() -> work(missing)));
            }
            awaitAll(running);
        } finally {
            pool.shutdownNow();
        }
        return ignored.get() ? Outcome.RANGES_IGNORED : Outcome.COMPLETE;
    }

    private Void work(Queue<Integer> missing) throws IOException {
        byte[] buffer = new byte[BUFFER];
        try {
            for (Integer range = missing.poll(); range != null && !stop.get(); range = missing.poll()) {
                if (fetch(range, buffer)) {
                    partial.complete(range);
                }
            }
            return null;
        } catch (IOException | RuntimeException | Error e) {
            stop.set(true); // the others finish what they are reading and give up
            throw e;
        }
    }

    /** The first failure of any worker, once all have stopped. */
    private static void awaitAll(List<Future<Void>> running) throws IOException {
        Throwable first = null;
        for (Future<Void> future : running) {
            try {
                future.get();
            } catch (ExecutionException e) {
                first = first == null ? e.getCause() : first;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                first = first == null ? new InterruptedIOException("interrupted") : first;
            }
        }
        if (first instanceof IOException io) {
            throw io;
        }
        if (first instanceof RuntimeException runtime) {
            throw runtime;
        }
        if (first instanceof Error error) {
            throw error;
        }
        if (first != null) {
            throw new UncheckedIOException(new IOException(first));
        }
    }

    /** Writes range {@code i}'s bytes; false when the fetch stopped first (a failure elsewhere, or Range ignored). */
    private boolean fetch(int range, byte[] buffer) throws IOException {
        long at = partial.start(range);
        long end = at + partial.length(range);
        int failures = 0;
        while (at < end) {
            HttpResponse<InputStream> response = client.blobRange(repository, digest, at, end - 1, display);
            IOException broken = null;
            try (InputStream body = response.body()) {
                if (response.statusCode() == 200) {
                    ignored.set(true);
                    stop.set(true);
                    return false;
                }
                checkRange(response, at, end - 1);
                while (at < end && broken == null) {
                    if (stop.get()) {
                        return false;
                    }
                    int n = read(body, buffer, (int) Math.min(buffer.length, end - at));
                    if (n <= 0) {
                        broken = new IOException(n == 0 ? "the connection closed at byte " + at : "the read failed");
                        continue;
                    }
                    partial.write(ByteBuffer.wrap(buffer, 0, n), at); // a disk error is not retried
                    at += n;
                    failures = 0;
                    progress.accept(n);
                }
            } catch (BrokenBody e) {
                broken = e.cause;
            }
            if (broken != null && ++failures >= options.attempts()) {
                throw new RegistryException(RegistryException.Kind.NETWORK, display + ": range " + range + " of blob "
                        + digest + " broke off at byte " + at + " and did not resume (" + RegistryClient.describe(broken)
                        + ")", broken);
            }
            if (broken != null) {
                RegistryClient.pause(options.firstBackoff().multipliedBy(1L << (failures - 1)));
            }
        }
        return true;
    }

    /** Fills {@code buffer} up to {@code length} from the body; a broken connection is a {@link BrokenBody}. */
    private static int read(InputStream body, byte[] buffer, int length) throws BrokenBody {
        try {
            return body.readNBytes(buffer, 0, length);
        } catch (IOException e) {
            throw new BrokenBody(e);
        }
    }

    /** A connection that broke while a range's body was read: retried from the byte it stopped at. */
    private static final class BrokenBody extends IOException {
        private final IOException cause;

        BrokenBody(IOException cause) {
            super(cause);
            this.cause = cause;
        }
    }

    /** A 206 whose Content-Range is exactly the range asked for; anything else could place wrong bytes. */
    private void checkRange(HttpResponse<InputStream> response, long first, long last) throws RegistryException {
        checkRange(response, first, last, partial.size(), digest, display);
    }

    static void checkRange(HttpResponse<InputStream> response, long first, long last, long size, Digest digest,
            String display) throws RegistryException {
        String asked = "bytes " + first + "-" + last + "/";
        String sent = response.headers().firstValue("Content-Range").orElse("");
        boolean exact = sent.startsWith(asked) && (sent.substring(asked.length()).equals(Long.toString(size))
                || sent.substring(asked.length()).equals("*"));
        if (response.statusCode() != 206 || !exact) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": asked for bytes " + first + "-"
                    + last + " of blob " + digest + ", the registry answered HTTP " + response.statusCode()
                    + (sent.isEmpty() ? " without a Content-Range" : " with Content-Range '" + sent + "'"));
        }
    }
}
