package io.vimgfs.store.registry;

import io.vimgfs.store.Digest;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.security.MessageDigest;
import java.util.Optional;
import java.util.function.LongConsumer;

/**
 * The body of one download as a stream that survives broken connections: it asks again with
 * {@code Range: bytes=N-} from where it stopped (skipping ahead if the server ignores Range), and
 * counts what it hands out. At its end it checks the expected size and, when it was given one, the
 * digest, so a reader that reaches EOF without an exception has exactly the bytes the descriptor
 * named; more bytes than the descriptor said fail at once, so a hostile server cannot fill the disk.
 * Without an expected digest it does not hash at all: its reader (the store's upload) hashes the
 * same bytes and checks them, and SHA-256 is most of a pull's CPU.
 */
final class ResumableBody extends InputStream {
    /** Opens the download at an offset: the response, status 200 or 206 expected. */
    interface Opener {
        HttpResponse<InputStream> open(long offset) throws IOException;
    }

    private final Opener opener;
    private final Optional<Digest> expected;
    private final String display;
    private final RegistryClient.Options options;
    private final LongConsumer progress;
    private final Optional<MessageDigest> sha;
    private long size;
    private long position;
    private InputStream current;
    private boolean finished;
    private int failuresWithoutProgress;

    /** {@code size} is -1 when unknown (a URL); it is then taken from the first Content-Length. */
    ResumableBody(Opener opener, Optional<Digest> expected, long size, LongConsumer progress, String display,
            RegistryClient.Options options) {
        this.opener = opener;
        this.expected = expected;
        this.sha = expected.map(e -> newSha256());
        this.size = size;
        this.progress = progress;
        this.display = display;
        this.options = options;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] buffer, int offset, int length) throws IOException {
        if (length == 0) {
            return 0;
        }
        while (!finished) {
            if (current == null) {
                current = reopen();
                continue;
            }
            int n;
            try {
                n = current.read(buffer, offset, length);
            } catch (IOException e) {
                broken(e);
                continue;
            }
            if (n < 0) {
                if (size < 0 || position == size) {
                    finish();
                    break;
                }
                broken(new IOException("the connection closed after " + position + " of " + size + " bytes"));
                continue;
            }
            if (size >= 0 && position + n > size) {
                throw new RegistryException(RegistryException.Kind.DIGEST_MISMATCH, display + ": the server sent more "
                        + "than the " + size + " bytes the descriptor names; refusing it");
            }
            if (sha.isPresent()) {
                sha.get().update(buffer, offset, n);
            }
            position += n;
            failuresWithoutProgress = 0;
            progress.accept(n);
            return n;
        }
        return -1;
    }

    /** Reads to the end, so the size and digest are checked even when the consumer needed less. */
    void drain() throws IOException {
        byte[] sink = new byte[1 << 16];
        while (read(sink, 0, sink.length) >= 0) {
            // keep reading
        }
    }

    long position() {
        return position;
    }

    private InputStream reopen() throws IOException {
        HttpResponse<InputStream> response = opener.open(position);
        int status = response.statusCode();
        InputStream body = response.body();
        if (status == 416 && position == size) {
            body.close();
            finish();
            return InputStream.nullInputStream();
        }
        if (status != 200 && status != 206) {
            body.close();
            throw new RegistryException(status == 404 ? RegistryException.Kind.NOT_FOUND : RegistryException.Kind.PROTOCOL,
                    display + ": the server answered HTTP " + status + (status == 404 ? " (not found); check the URL or tag" : ""));
        }
        if (status == 206 && !response.headers().firstValue("Content-Range").orElse("").startsWith("bytes " + position + "-")) {
            body.close();
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": the server resumed at the wrong "
                    + "offset (" + response.headers().firstValue("Content-Range").orElse("no Content-Range") + ")");
        }
        if (size < 0 && position == 0 && status == 200) {
            size = response.headers().firstValueAsLong("Content-Length").orElse(-1);
        }
        if (status == 200 && position > 0) {
            body.skipNBytes(position); // the server ignored Range: it starts over, we do not
        }
        return body;
    }

    private void broken(IOException cause) throws IOException {
        closeCurrent();
        if (++failuresWithoutProgress >= options.attempts()) {
            throw new RegistryException(RegistryException.Kind.NETWORK, display + ": the download broke off after "
                    + position + " bytes and did not resume (" + RegistryClient.describe(cause) + ")", cause);
        }
        try {
            Thread.sleep(options.firstBackoff().multipliedBy(1L << (failuresWithoutProgress - 1)).toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private void finish() throws IOException {
        finished = true;
        closeCurrent();
        if (sha.isEmpty()) {
            return;
        }
        Digest digest = Digest.of(sha.get().digest());
        if (!expected.get().equals(digest)) {
            throw new RegistryException(RegistryException.Kind.DIGEST_MISMATCH, display + ": the bytes received hash to "
                    + digest + ", not " + expected.get() + "; the source is corrupt or tampered with");
        }
    }

    private void closeCurrent() {
        if (current != null) {
            try {
                current.close();
            } catch (IOException e) {
                // a broken connection that will not close cleanly: nothing more to lose
            }
            current = null;
        }
    }

    @Override
    public void close() {
        closeCurrent();
        finished = true;
    }

    static byte[] sha256(byte[] bytes) {
        return newSha256().digest(bytes);
    }

    static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

}
