package io.vimgfs.store.registry;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * A distribution registry on 127.0.0.1 for tests (the JDK's HTTPS server, a self-signed
 * certificate): manifests and blobs
 * from memory, single-range GETs answered 206, and switches for the ways real registries and
 * their storage behave: Range ignored, a wrong Content-Range, 429 with Retry-After, a redirect
 * to another server, Bearer tokens that expire mid-pull, a flipped byte. It counts the blob bytes
 * it sends and records every blob request.
 */
final class FakeRegistry implements AutoCloseable {
    private static final Pattern BLOB = Pattern.compile("/v2/(.+)/blobs/(sha256:[0-9a-f]{64})");
    private static final Pattern MANIFEST = Pattern.compile("/v2/(.+)/manifests/([^/]+)");
    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d*)");

    /** One blob request as it arrived. */
    record BlobRequest(String digest, Optional<String> range, Optional<String> authorization, long nanos) {
    }

    private record Manifest(byte[] bytes, String mediaType) {
    }

    private static final char[] PASSWORD = "fake-registry".toCharArray();
    private static SSLContext tls;

    private final HttpsServer server;
    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final Map<String, byte[]> blobs = new ConcurrentHashMap<>();
    private final Map<String, Manifest> manifests = new ConcurrentHashMap<>();
    private final List<BlobRequest> blobRequests = new CopyOnWriteArrayList<>();
    private final Map<String, AtomicLong> bytesSent = new ConcurrentHashMap<>();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger mostInFlight = new AtomicInteger();
    private final AtomicInteger tokensIssued = new AtomicInteger();
    private final Map<String, Boolean> validTokens = new ConcurrentHashMap<>();

    volatile boolean ignoreRange;
    volatile boolean wrongContentRange;
    volatile int tooManyRequests;
    volatile String retryAfter = "1";
    volatile Optional<String> refusedRange = Optional.empty();
    volatile long refusedAt;
    volatile FakeRegistry redirectBlobsTo;
    volatile boolean bearer;
    /** With {@link #bearer}: the tokens issued so far stop working after this many blob requests (0: never), once. */
    volatile int revokeTokensAfter;
    volatile long flipByteAt = -1;
    volatile long delayMillis;

    FakeRegistry() throws IOException {
        server = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        server.setHttpsConfigurator(new HttpsConfigurator(tls()));
        server.setExecutor(threads);
        server.createContext("/", this::handle);
        server.start();
    }

    /**
     * A self-signed certificate for 127.0.0.1, made once with keytool: a lab registry's, which
     * {@code --tls-verify=false} accepts (a plain-HTTP JDK server would leave the client's TLS
     * probe hanging, where a real registry answers it with an error at once).
     */
    private static synchronized SSLContext tls() throws IOException {
        if (tls == null) {
            Path store = Files.createTempFile("fake-registry", ".p12");
            Files.delete(store);
            try {
                Process keytool = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
                        "-genkeypair", "-keyalg", "EC", "-alias", "fake", "-dname", "CN=127.0.0.1", "-validity", "2",
                        "-storetype", "PKCS12", "-keystore", store.toString(), "-storepass", new String(PASSWORD))
                        .redirectErrorStream(true).start();
                String output = new String(keytool.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (keytool.waitFor() != 0) {
                    throw new IOException("keytool failed: " + output);
                }
                KeyStore keys = KeyStore.getInstance("PKCS12");
                try (InputStream in = Files.newInputStream(store)) {
                    keys.load(in, PASSWORD);
                }
                KeyManagerFactory managers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                managers.init(keys, PASSWORD);
                SSLContext context = SSLContext.getInstance("TLS");
                context.init(managers.getKeyManagers(), null, null);
                tls = context;
            } catch (InterruptedException | GeneralSecurityException e) {
                throw new IOException(e);
            } finally {
                Files.deleteIfExists(store);
            }
        }
        return tls;
    }

    String host() {
        return "127.0.0.1:" + server.getAddress().getPort();
    }

    void blob(String digest, byte[] content) {
        blobs.put(digest, content);
    }

    void manifest(String repository, String reference, byte[] bytes, String mediaType) {
        manifests.put(repository + ":" + reference, new Manifest(bytes, mediaType));
    }

    List<BlobRequest> blobRequests() {
        return List.copyOf(blobRequests);
    }

    /** The bytes of blob {@code digest} sent since the start or the last {@link #resetCounts}. */
    long bytesSent(String digest) {
        AtomicLong sent = bytesSent.get(digest);
        return sent == null ? 0 : sent.get();
    }

    int mostInFlight() {
        return mostInFlight.get();
    }

    int tokensIssued() {
        return tokensIssued.get();
    }

    void resetCounts() {
        blobRequests.clear();
        bytesSent.clear();
        mostInFlight.set(0);
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            String path = exchange.getRequestURI().getPath();
            if (path.equals("/token")) {
                String token = "t" + tokensIssued.incrementAndGet();
                validTokens.put(token, true);
                send(exchange, 200, ("{\"token\":\"" + token + "\",\"expires_in\":300}").getBytes(StandardCharsets.UTF_8));
                return;
            }
            Matcher blob = BLOB.matcher(path);
            boolean isBlob = blob.matches();
            if (isBlob) {
                blobRequests.add(new BlobRequest(blob.group(2), header(exchange, "Range"), header(exchange, "Authorization"),
                        System.nanoTime()));
            }
            if (bearer && !authorized(exchange)) {
                exchange.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"https://" + host()
                        + "/token\",service=\"fake\"");
                send(exchange, 401, new byte[0]);
                return;
            }
            if (path.equals("/v2/")) {
                send(exchange, 200, "{}".getBytes(StandardCharsets.UTF_8));
            } else if (isBlob) {
                serveBlob(exchange, blob.group(1), blob.group(2));
            } else if (MANIFEST.matcher(path).matches()) {
                Matcher manifest = MANIFEST.matcher(path);
                manifest.matches();
                Manifest found = manifests.get(manifest.group(1) + ":" + manifest.group(2));
                if (found == null) {
                    send(exchange, 404, new byte[0]);
                    return;
                }
                exchange.getResponseHeaders().add("Content-Type", found.mediaType());
                send(exchange, 200, found.bytes());
            } else {
                send(exchange, 404, new byte[0]);
            }
        }
    }

    /** Whether this range request is one of the {@link #tooManyRequests} to refuse; its time is then {@link #refusedAt}. */
    private synchronized boolean refuseOnce(HttpExchange exchange) {
        if (tooManyRequests <= 0 || header(exchange, "Range").isEmpty()) {
            return false;
        }
        tooManyRequests--;
        refusedRange = header(exchange, "Range");
        refusedAt = System.nanoTime();
        return true;
    }

    private boolean authorized(HttpExchange exchange) {
        Optional<String> given = header(exchange, "Authorization");
        return given.isPresent() && given.get().startsWith("Bearer ")
                && validTokens.containsKey(given.get().substring("Bearer ".length()));
    }

    private void serveBlob(HttpExchange exchange, String repository, String digest) throws IOException {
        if (bearer && revokeTokensAfter > 0 && blobRequests.size() >= revokeTokensAfter) {
            revokeTokensAfter = 0;
            validTokens.clear(); // as a token expiring mid-pull: the next requests need a fresh one
        }
        if (refuseOnce(exchange)) {
            exchange.getResponseHeaders().add("Retry-After", retryAfter);
            send(exchange, 429, new byte[0]);
            return;
        }
        FakeRegistry storage = redirectBlobsTo;
        if (storage != null) {
            exchange.getResponseHeaders().add("Location", "https://" + storage.host() + "/v2/" + repository + "/blobs/" + digest);
            send(exchange, 307, new byte[0]);
            return;
        }
        byte[] content = blobs.get(digest);
        if (content == null) {
            send(exchange, 404, new byte[0]);
            return;
        }
        int now = inFlight.incrementAndGet();
        mostInFlight.accumulateAndGet(now, Math::max);
        try {
            pause();
            Optional<String> range = header(exchange, "Range");
            Matcher asked = RANGE.matcher(range.orElse(""));
            if (range.isEmpty() || ignoreRange || !asked.matches()) {
                sendBlob(exchange, digest, 200, content, 0, content.length);
                return;
            }
            long first = Long.parseLong(asked.group(1));
            long last = asked.group(2).isEmpty() ? content.length - 1 : Math.min(Long.parseLong(asked.group(2)),
                    content.length - 1);
            long said = wrongContentRange ? first + 1 : first;
            exchange.getResponseHeaders().add("Content-Range", "bytes " + said + "-" + last + "/" + content.length);
            sendBlob(exchange, digest, 206, content, (int) first, (int) (last - first + 1));
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private void sendBlob(HttpExchange exchange, String digest, int status, byte[] content, int offset, int length)
            throws IOException {
        byte[] part = java.util.Arrays.copyOfRange(content, offset, offset + length);
        if (flipByteAt >= offset && flipByteAt < offset + length) {
            part[(int) (flipByteAt - offset)] ^= 0x01;
        }
        send(exchange, status, part);
        bytesSent.computeIfAbsent(digest, d -> new AtomicLong()).addAndGet(length);
    }

    private void pause() {
        if (delayMillis > 0) {
            try {
                Thread.sleep(delayMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static Optional<String> header(HttpExchange exchange, String name) {
        return Optional.ofNullable(exchange.getRequestHeaders().getFirst(name));
    }

    private static void send(HttpExchange exchange, int status, byte[] body) throws IOException {
        exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        }
    }

    @Override
    public void close() {
        server.stop(0);
        threads.shutdownNow();
    }
}
