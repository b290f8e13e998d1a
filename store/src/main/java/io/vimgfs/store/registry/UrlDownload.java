package io.vimgfs.store.registry;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Optional;
import javax.net.ssl.SSLException;

/**
 * {@code vimgfs pull URL NAME}, virtlet's way: stream the file into an upload, resuming with HTTP
 * Range when the connection breaks, and let the store check the pin and probe it as
 * {@code incoming/} does. Plain HTTP needs a pin (the digest then vouches for the bytes) or
 * {@code --tls-verify=false}.
 */
public final class UrlDownload {
    private static final int MAX_REDIRECTS = 10;

    private final ImageStore store;
    private final RegistryClient.Options options;
    private final TransferProgress progress;
    private final HttpClient http;

    public UrlDownload(ImageStore store, RegistryClient.Options options, TransferProgress progress) {
        this.store = store;
        this.options = options;
        this.progress = progress;
        this.http = RegistryClient.httpClient(options);
    }

    public ImageInfo pull(URI url, Reference name) throws IOException {
        String display = url.toString();
        if ("http".equals(url.getScheme()) && options.tlsVerify() && name.pin().isEmpty()) {
            throw new RegistryException(RegistryException.Kind.TLS, display + ": plain HTTP with no pinned digest; pin "
                    + "the content (NAME@sha256:<hex>) or pass --tls-verify=false");
        }
        Upload upload = store.beginUpload();
        try {
            ResumableBody body = new ResumableBody(offset -> open(url, offset, display), Optional.empty(), -1,
                    progress::advance, display, options);
            try (body) {
                upload.copyFrom(body, n -> { });
            }
            return store.place(upload, name);
        } finally {
            upload.abandon();
        }
    }

    private HttpResponse<InputStream> open(URI url, long offset, String display) throws IOException {
        URI target = url;
        Duration backoff = options.firstBackoff();
        int redirects = 0;
        for (int attempt = 1; ; ) {
            HttpRequest.Builder request = HttpRequest.newBuilder(target).timeout(options.timeout()).GET();
            if (offset > 0) {
                request.header("Range", "bytes=" + offset + "-");
            }
            HttpResponse<InputStream> response;
            try {
                response = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
            } catch (SSLException e) {
                throw new RegistryException(RegistryException.Kind.TLS, display + ": TLS failure (" + RegistryClient.describe(e)
                        + "); for a lab server with a self-signed certificate, pass --tls-verify=false", e);
            } catch (IOException e) {
                if (attempt++ >= options.attempts()) {
                    throw new RegistryException(RegistryException.Kind.NETWORK, display + ": cannot download: "
                            + RegistryClient.describe(e) + " (after " + options.attempts() + " tries)", e);
                }
                backoff = sleep(backoff);
                continue;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            int status = response.statusCode();
            if (status >= 300 && status < 400 && response.headers().firstValue("Location").isPresent()) {
                response.body().close();
                if (++redirects > MAX_REDIRECTS) {
                    throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": more than " + MAX_REDIRECTS
                            + " redirects");
                }
                target = target.resolve(response.headers().firstValue("Location").get());
                continue;
            }
            if ((status >= 500 || status == 429) && attempt++ < options.attempts()) {
                response.body().close();
                backoff = sleep(backoff);
                continue;
            }
            if (status == 404 || status == 410) {
                response.body().close();
                throw new RegistryException(RegistryException.Kind.NOT_FOUND, display + ": HTTP " + status
                        + " (not found); check the URL");
            }
            if (offset == 0 && status == 200) {
                progress.begin("pull", response.headers().firstValueAsLong("Content-Length").orElse(-1));
            }
            return response;
        }
    }

    private static Duration sleep(Duration backoff) throws IOException {
        try {
            Thread.sleep(backoff.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        return backoff.multipliedBy(2);
    }
}
