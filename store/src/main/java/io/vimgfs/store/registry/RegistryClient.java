package io.vimgfs.store.registry;

import io.vimgfs.store.Digest;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongConsumer;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Talks the distribution API (OCI distribution-spec) to one registry over {@code java.net.http}:
 * the {@code /v2/} ping, challenges answered through the {@link Authorizer}, redirects followed by
 * hand (so blob storage never sees our Authorization header), retries with backoff on 5xx and
 * broken connections, manifests by media type, blobs streamed and verified, uploads.
 */
public final class RegistryClient {
    static final List<String> MANIFEST_TYPES = List.of(MediaTypes.OCI_MANIFEST, MediaTypes.OCI_INDEX,
            MediaTypes.DOCKER_MANIFEST, MediaTypes.DOCKER_MANIFEST_LIST);
    private static final int MAX_MANIFEST_BYTES = 8 << 20;
    private static final int MAX_REDIRECTS = 10;
    private static final Duration MAX_RETRY_AFTER = Duration.ofSeconds(60);
    /** Upload blobs bigger than this in PATCH chunks of this size: proxies in front of registries cap request bodies. */
    static final long CHUNK_BYTES = 64L << 20;

    /** How to reach registries: TLS verification (off also allows plain HTTP), retries and backoff. */
    public record Options(boolean tlsVerify, int attempts, Duration firstBackoff, Duration timeout) {
        public static Options defaults(boolean tlsVerify) {
            return new Options(tlsVerify, 5, Duration.ofMillis(250), Duration.ofSeconds(60));
        }
    }

    /** A manifest or index as the registry sent it, with its digest and media type. */
    public record Manifest(byte[] bytes, String mediaType, Digest digest) {
    }

    private final String registry;
    private final Options options;
    private final HttpClient http;
    private final Authorizer authorizer;
    private volatile String scheme;

    private RegistryClient(String registry, Options options, HttpClient http, Authorizer authorizer) {
        this.registry = registry;
        this.options = options;
        this.http = http;
        this.authorizer = authorizer;
    }

    /** A client for the reference's registry; nothing is sent until the first request. */
    public static RegistryClient forRegistry(RegistryReference reference, Options options, CredentialLookup credentials) {
        return new RegistryClient(reference.apiHost(), options, httpClient(options),
                new Authorizer(reference.registry(), credentials, Clock.systemUTC()));
    }

    /** The HTTP client vimgfs uses everywhere: HTTP/1.1, no automatic redirects, TLS as the options say. */
    static HttpClient httpClient(Options options) {
        HttpClient.Builder builder = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .followRedirects(HttpClient.Redirect.NEVER).connectTimeout(Duration.ofSeconds(30));
        if (!options.tlsVerify()) {
            builder.sslContext(trustingEverything());
        }
        return builder.build();
    }

    private static SSLContext trustingEverything() {
        // --tls-verify=false: the user chose to accept any certificate, as skopeo does.
        System.setProperty("jdk.internal.httpclient.disableHostnameVerification", "true");
        TrustManager all = new X509TrustManager() {
            @Override
            public void checkClientTrusted(X509Certificate[] chain, String authType) {
            }

            @Override
            public void checkServerTrusted(X509Certificate[] chain, String authType) {
            }

            @Override
            public X509Certificate[] getAcceptedIssuers() {
                return new X509Certificate[0];
            }
        };
        try {
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, new TrustManager[] {all}, new SecureRandom());
            return context;
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException("TLS is unavailable in this JVM", e);
        }
    }

    // ---- the API -------------------------------------------------------------------------

    /** Fetches a manifest or index by tag or digest; a digest reference is verified. */
    public Manifest manifest(String repository, String reference, String display) throws IOException {
        HttpResponse<InputStream> response = send("GET", path("/v2/" + repository + "/manifests/" + reference),
                Map.of("Accept", String.join(", ", MANIFEST_TYPES)), null, Authorizer.Scope.pull(repository), display);
        try (InputStream body = response.body()) {
            if (response.statusCode() == 404) {
                throw new RegistryException(RegistryException.Kind.NOT_FOUND, display + ": manifest unknown: the "
                        + "registry has no such tag or digest (list the tags with 'skopeo list-tags docker://"
                        + registry + "/" + repository + "')");
            }
            expect(response, 200, display);
            byte[] bytes = body.readNBytes(MAX_MANIFEST_BYTES + 1);
            if (bytes.length > MAX_MANIFEST_BYTES) {
                throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": the manifest is over "
                        + (MAX_MANIFEST_BYTES >> 20) + " MiB; refusing it");
            }
            Digest digest = Digest.of(ResumableBody.sha256(bytes));
            if (reference.startsWith("sha256:") && !reference.equals(digest.toString())) {
                throw new RegistryException(RegistryException.Kind.DIGEST_MISMATCH, display + ": the registry sent a "
                        + "manifest with digest " + digest + " for " + reference + "; it is corrupt or lying");
            }
            String type = response.headers().firstValue("Content-Type").orElse("").split(";")[0].trim();
            return new Manifest(bytes, type, digest);
        }
    }

    /** Streams a blob; the stream resumes by Range when the connection breaks and verifies at its end. */
    public InputStream blob(String repository, Digest digest, long size, LongConsumer progress, String display) {
        return openBlob(repository, digest, size, progress, display);
    }

    ResumableBody openBlob(String repository, Digest digest, long size, LongConsumer progress, String display) {
        return openBlob(repository, digest, size, progress, display, Optional.of(digest));
    }

    /**
     * Streams a blob whose bytes the store hashes as they are written and compares with
     * {@code digest} before it places anything (a vimgfs layer is the disk itself): only its size
     * is checked here, so a pull hashes once.
     */
    ResumableBody openBlobCheckedByStore(String repository, Digest digest, long size, LongConsumer progress,
            String display) {
        return openBlob(repository, digest, size, progress, display, Optional.empty());
    }

    private ResumableBody openBlob(String repository, Digest digest, long size, LongConsumer progress, String display,
            Optional<Digest> check) {
        return new ResumableBody(offset -> getBlob(repository, digest, offset > 0 ? Map.of("Range", "bytes=" + offset + "-")
                : Map.of(), display), check, size, progress, display, options);
    }

    /**
     * One range of a blob, bytes {@code first} to {@code last} inclusive: the response as sent
     * (through redirects, which keep the Range header and lose the Authorization one off the
     * registry); the caller checks its status and Content-Range and closes it.
     */
    HttpResponse<InputStream> blobRange(String repository, Digest digest, long first, long last, String display)
            throws IOException {
        return getBlob(repository, digest, Map.of("Range", "bytes=" + first + "-" + last), display);
    }

    private HttpResponse<InputStream> getBlob(String repository, Digest digest, Map<String, String> headers,
            String display) throws IOException {
        HttpResponse<InputStream> response = send("GET", path("/v2/" + repository + "/blobs/" + digest), headers, null,
                Authorizer.Scope.pull(repository), display);
        if (response.statusCode() == 404) {
            response.body().close();
            throw new RegistryException(RegistryException.Kind.NOT_FOUND, display + ": blob " + digest
                    + " is missing from the registry (the image is incomplete there)");
        }
        return response;
    }

    /** A small blob (a config) read whole and verified. */
    public byte[] smallBlob(String repository, Digest digest, long size, String display) throws IOException {
        return smallBlob(repository, digest, size, MAX_MANIFEST_BYTES, display);
    }

    /** A blob read whole into memory, refused unless its descriptor's size is at most {@code maxBytes}. */
    public byte[] smallBlob(String repository, Digest digest, long size, long maxBytes, String display) throws IOException {
        if (size < 0 || size > maxBytes) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": blob " + digest
                    + " claims " + size + " bytes; refusing it");
        }
        try (InputStream in = blob(repository, digest, size, n -> { }, display)) {
            return in.readAllBytes();
        }
    }

    /** Whether the repository already has the blob (HEAD). */
    public boolean hasBlob(String repository, Digest digest, String display) throws IOException {
        HttpResponse<InputStream> response = send("HEAD", path("/v2/" + repository + "/blobs/" + digest), Map.of(),
                null, Authorizer.Scope.push(repository), display);
        response.body().close();
        return response.statusCode() == 200;
    }

    /** Asks the registry to link a blob from another of its repositories; true when it did. */
    public boolean mountBlob(String repository, Digest digest, String from, String display) throws IOException {
        URI uri = path("/v2/" + repository + "/blobs/uploads/?mount=" + digest + "&from=" + from);
        HttpResponse<InputStream> response = send("POST", uri, Map.of(), HttpRequest.BodyPublishers::noBody,
                new Authorizer.Scope(repository, "pull,push", Optional.of(from)), display);
        response.body().close();
        return response.statusCode() == 201;
    }

    /** Where a blob's bytes come from for an upload: a stream from any offset, and their length. */
    public interface BlobSource {
        InputStream open(long offset) throws IOException;

        long size();
    }

    /** Uploads a blob: one PUT when small, PATCH chunks then a closing PUT when large. */
    public void uploadBlob(String repository, Digest digest, BlobSource source, LongConsumer progress, String display)
            throws IOException {
        Authorizer.Scope scope = Authorizer.Scope.push(repository);
        HttpResponse<InputStream> started = send("POST", path("/v2/" + repository + "/blobs/uploads/"), Map.of(),
                HttpRequest.BodyPublishers::noBody, scope, display);
        started.body().close();
        expect(started, 202, display);
        URI location = location(started, display);
        long size = source.size();
        if (size > CHUNK_BYTES) {
            for (long offset = 0; offset < size; offset += CHUNK_BYTES) {
                long from = offset;
                long length = Math.min(CHUNK_BYTES, size - offset);
                HttpResponse<InputStream> chunk = send("PATCH", location, Map.of("Content-Type", "application/octet-stream",
                        "Content-Range", from + "-" + (from + length - 1)),
                        () -> publisher(source, from, length), scope, display);
                chunk.body().close();
                expect(chunk, 202, display);
                location = location(chunk, display);
                progress.accept(length);
            }
            HttpResponse<InputStream> done = send("PUT", withDigest(location, digest), Map.of(),
                    HttpRequest.BodyPublishers::noBody, scope, display);
            done.body().close();
            expect(done, 201, display);
            return;
        }
        HttpResponse<InputStream> done = send("PUT", withDigest(location, digest), Map.of("Content-Type",
                "application/octet-stream"), () -> publisher(source, 0, size), scope, display);
        done.body().close();
        expect(done, 201, display);
        progress.accept(size);
    }

    /** Stores a manifest under a tag (or its digest); returns the digest the registry computed. */
    public Digest putManifest(String repository, String reference, byte[] manifest, String mediaType, String display)
            throws IOException {
        HttpResponse<InputStream> response = send("PUT", path("/v2/" + repository + "/manifests/" + reference),
                Map.of("Content-Type", mediaType), () -> HttpRequest.BodyPublishers.ofByteArray(manifest),
                Authorizer.Scope.push(repository), display);
        String body = new String(response.body().readNBytes(4096), java.nio.charset.StandardCharsets.UTF_8);
        response.body().close();
        if (response.statusCode() != 201) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": the registry refused the manifest "
                    + "(HTTP " + response.statusCode() + ": " + oneLine(body) + ")");
        }
        Digest digest = Digest.of(ResumableBody.sha256(manifest));
        String said = response.headers().firstValue("Docker-Content-Digest").orElse(digest.toString());
        if (!said.equals(digest.toString())) {
            throw new RegistryException(RegistryException.Kind.DIGEST_MISMATCH, display + ": the registry stored the "
                    + "manifest as " + said + ", not " + digest);
        }
        return digest;
    }

    private static HttpRequest.BodyPublisher publisher(BlobSource source, long offset, long length) {
        return HttpRequest.BodyPublishers.fromPublisher(HttpRequest.BodyPublishers.ofInputStream(() -> {
            try {
                return new BoundedStream(source.open(offset), length);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }), length);
    }

    /** At most {@code limit} bytes of a stream. */
    private static final class BoundedStream extends java.io.FilterInputStream {
        private long left;

        BoundedStream(InputStream in, long limit) {
            super(in);
            this.left = limit;
        }

        @Override
        public int read() throws IOException {
            if (left <= 0) {
                return -1;
            }
            int b = super.read();
            left -= b >= 0 ? 1 : 0;
            return b;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
            if (left <= 0) {
                return -1;
            }
            int n = super.read(buffer, offset, (int) Math.min(length, left));
            left -= Math.max(n, 0);
            return n;
        }
    }

    // ---- the transport -------------------------------------------------------------------

    /** A fresh request body for each attempt. */
    interface Body {
        HttpRequest.BodyPublisher publisher();
    }

    /**
     * Sends a request to the registry (or where it redirects), answering a challenge once,
     * following redirects without our Authorization header off the registry, and retrying 5xx,
     * 429 and broken connections with exponential backoff. The caller closes the body.
     */
    HttpResponse<InputStream> send(String method, URI uri, Map<String, String> headers, Body body,
            Authorizer.Scope scope, String display) throws IOException {
        URI target = resolveScheme(uri, display);
        boolean answeredChallenge = false;
        int redirects = 0;
        Duration backoff = options.firstBackoff();
        for (int attempt = 1; ; ) {
            boolean onRegistry = sameOrigin(target);
            HttpResponse<InputStream> response = sendOnce(method, target, headers, body, onRegistry ? scope : null, display,
                    attempt >= options.attempts());
            if (response == null) {
                attempt++;
                backoff = pause(backoff);
                continue;
            }
            int status = response.statusCode();
            if (status == 401 && onRegistry) {
                response.body().close();
                if (answeredChallenge) {
                    throw new RegistryException(RegistryException.Kind.AUTHENTICATION_REQUIRED,
                            authorizer.refusal(display, scope));
                }
                authorizer.challenged(response.headers().allValues("WWW-Authenticate"), scope);
                answeredChallenge = true;
                continue;
            }
            if (status == 403 && onRegistry) {
                response.body().close();
                throw new RegistryException(RegistryException.Kind.DENIED, display + ": access denied (" + scope.actions()
                        + " on " + scope.repository() + "); the credentials lack that permission");
            }
            if (isRedirect(status) && response.headers().firstValue("Location").isPresent()) {
                response.body().close();
                if (++redirects > MAX_REDIRECTS) {
                    throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": more than "
                            + MAX_REDIRECTS + " redirects");
                }
                target = target.resolve(response.headers().firstValue("Location").get());
                checkScheme(target, display);
                continue;
            }
            if ((status >= 500 || status == 429) && attempt < options.attempts()) {
                response.body().close();
                attempt++;
                Optional<Duration> asked = retryAfter(response);
                if (asked.isPresent()) {
                    pause(asked.get());
                } else {
                    backoff = pause(backoff);
                }
                continue;
            }
            return response;
        }
    }

    /**
     * One attempt, with the registry's Authorization when {@code scope} is given: the response, or
     * null when the connection broke and another attempt is due (on the {@code last}, the failure).
     */
    private HttpResponse<InputStream> sendOnce(String method, URI target, Map<String, String> headers, Body body,
            Authorizer.Scope scope, String display, boolean last) throws IOException {
        HttpRequest.Builder request = HttpRequest.newBuilder(target).timeout(options.timeout())
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : body.publisher());
        headers.forEach(request::header);
        if (scope != null) {
            authorizer.header(http, scope, display).ifPresent(h -> request.header("Authorization", h));
        }
        try {
            return http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (SSLException e) {
            throw tlsFailure(display, e);
        } catch (IOException e) {
            if (last) {
                throw new RegistryException(RegistryException.Kind.NETWORK, display + ": cannot reach "
                        + target.getAuthority() + ": " + describe(e) + " (after " + options.attempts() + " tries)", e);
            }
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /**
     * With verification on, only https. With it off, https is tried first and plain HTTP when the
     * port does not speak TLS (as skopeo does), remembered for the client's life.
     */
    private URI resolveScheme(URI uri, String display) throws IOException {
        if (scheme == null) {
            scheme = ping(display);
        }
        return URI.create(scheme + uri.toString().substring(uri.getScheme().length()));
    }

    private String ping(String display) throws IOException {
        try {
            return pingWith("https", display);
        } catch (SSLException | ConnectException e) {
            if (options.tlsVerify()) {
                if (e instanceof SSLException ssl) {
                    throw tlsFailure(display, ssl);
                }
                throw new RegistryException(RegistryException.Kind.NETWORK, display + ": cannot reach " + registry
                        + ": " + describe(e), e);
            }
            try {
                return pingWith("http", display);
            } catch (IOException plain) {
                throw new RegistryException(RegistryException.Kind.NETWORK, display + ": cannot reach " + registry
                        + " over https or http: " + describe(plain), plain);
            }
        }
    }

    private String pingWith(String tryScheme, String display) throws IOException {
        URI uri = URI.create(tryScheme + "://" + registry + "/v2/");
        IOException last = null;
        for (int attempt = 1; attempt <= options.attempts(); attempt++) {
            try {
                HttpResponse<Void> response = http.send(HttpRequest.newBuilder(uri).timeout(options.timeout()).GET().build(),
                        HttpResponse.BodyHandlers.discarding());
                if (response.statusCode() == 401) {
                    authorizer.challenged(response.headers().allValues("WWW-Authenticate"), Authorizer.Scope.pull(""));
                } else if (response.statusCode() >= 500 && attempt < options.attempts()) {
                    pause(options.firstBackoff().multipliedBy(1L << (attempt - 1)));
                    continue;
                }
                return tryScheme;
            } catch (SSLException | ConnectException e) {
                throw e;
            } catch (HttpTimeoutException e) {
                last = e;
            } catch (IOException e) {
                if (tryScheme.equals("https") && isTlsToPlainHttp(e)) {
                    throw new SSLException(e.getMessage(), e);
                }
                last = e;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            pause(options.firstBackoff().multipliedBy(1L << (attempt - 1)));
        }
        throw new RegistryException(RegistryException.Kind.NETWORK, display + ": cannot reach " + registry + ": "
                + describe(last), last);
    }

    /** A plain-HTTP server answering a TLS hello closes or answers garbage; Java reports it variously. */
    private static boolean isTlsToPlainHttp(IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SSLException) {
                return true;
            }
        }
        return false;
    }

    private RegistryException tlsFailure(String display, SSLException e) {
        return new RegistryException(RegistryException.Kind.TLS, display + ": TLS failure talking to " + registry + " ("
                + describe(e) + "); if it is a lab registry with a self-signed certificate or plain HTTP, pass "
                + "--tls-verify=false", e);
    }

    private void checkScheme(URI target, String display) throws RegistryException {
        if ("http".equals(target.getScheme()) && options.tlsVerify()) {
            throw new RegistryException(RegistryException.Kind.TLS, display + ": the registry redirected to plain HTTP ("
                    + target.getAuthority() + "); pass --tls-verify=false to allow it");
        }
    }

    private boolean sameOrigin(URI target) {
        return registry.equalsIgnoreCase(target.getRawAuthority());
    }

    private URI path(String path) {
        return URI.create("https://" + registry + path);
    }

    private static URI withDigest(URI location, Digest digest) {
        String text = location.toString();
        return URI.create(text + (text.contains("?") ? "&" : "?") + "digest=" + digest);
    }

    private URI location(HttpResponse<?> response, String display) throws RegistryException {
        String location = response.headers().firstValue("Location").orElseThrow(() -> new RegistryException(
                RegistryException.Kind.PROTOCOL, display + ": the registry started an upload without a Location"));
        return response.uri().resolve(location);
    }

    /**
     * How long a 429 or 503 asks us to wait ({@code Retry-After}: seconds or an HTTP date), at most
     * the request timeout, so a registry cannot park a pull for hours.
     */
    static Optional<Duration> retryAfter(HttpResponse<?> response) {
        Optional<String> value = response.headers().firstValue("Retry-After").map(String::strip);
        if (value.isEmpty()) {
            return Optional.empty();
        }
        Duration wait;
        try {
            wait = Duration.ofSeconds(Math.max(0, Long.parseLong(value.get())));
        } catch (NumberFormatException notSeconds) {
            try {
                wait = Duration.between(java.time.Instant.now(), java.time.ZonedDateTime.parse(value.get(),
                        java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME).toInstant());
            } catch (java.time.format.DateTimeParseException notADate) {
                return Optional.empty();
            }
        }
        return Optional.of(wait.isNegative() ? Duration.ZERO : wait.compareTo(MAX_RETRY_AFTER) > 0 ? MAX_RETRY_AFTER : wait);
    }

    private static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    private static void expect(HttpResponse<?> response, int status, String display) throws RegistryException {
        if (response.statusCode() != status) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": " + response.request().method()
                    + " " + response.uri().getRawPath() + " answered HTTP " + response.statusCode() + ", expected " + status);
        }
    }

    static Duration pause(Duration backoff) throws IOException {
        try {
            Thread.sleep(backoff.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        return backoff.multipliedBy(2);
    }

    static String describe(Throwable e) {
        if (e == null) {
            return "no answer";
        }
        String message = e.getMessage();
        return (message == null || message.isBlank() ? e.getClass().getSimpleName() : message).replace('\n', ' ');
    }

    private static String oneLine(String text) {
        String line = text.strip().replace('\n', ' ');
        return line.length() > 200 ? line.substring(0, 200) + "…" : line;
    }

    static String hex(byte[] digest) {
        return HexFormat.of().formatHex(digest);
    }
}
