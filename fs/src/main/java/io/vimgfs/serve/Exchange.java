package io.vimgfs.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Optional;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpMethod;
import org.eclipse.jetty.io.ByteBufferPool;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;

/**
 * One request and its response, as the registry's rooms need them: headers and query in, a
 * status, headers and a body out. Small bodies are written at once; a blob streams through
 * pooled direct buffers, never through the heap.
 */
final class Exchange {
    static final ObjectMapper JSON = new ObjectMapper();
    private static final int BUFFER = 64 << 10; // the largest Jetty's default pool keeps: larger ones are garbage each time

    private final Request request;
    private final Response response;
    private final Callback callback;
    private final Fields query;

    Exchange(Request request, Response response, Callback callback) {
        this.request = request;
        this.response = response;
        this.callback = callback;
        this.query = Request.extractQueryParameters(request);
    }

    String method() {
        return request.getMethod();
    }

    boolean isHead() {
        return HttpMethod.HEAD.is(request.getMethod());
    }

    /** The path as sent, still percent-encoded: names are checked before anything decodes them. */
    String rawPath() {
        return request.getHttpURI().getPath();
    }

    Optional<String> header(String name) {
        return Optional.ofNullable(request.getHeaders().get(name));
    }

    Optional<String> query(String name) {
        return Optional.ofNullable(query.getValue(name));
    }

    /** The declared Content-Length, or -1 when the body is chunked or absent. */
    long contentLength() {
        return request.getLength();
    }

    InputStream body() {
        return Content.Source.asInputStream(request);
    }

    /** Reads a body of at most {@code limit} bytes; more is a {@code SIZE_INVALID} (413). */
    byte[] bodyAtMost(int limit, String what) throws IOException, RegistryError {
        if (contentLength() > limit) {
            throw new RegistryError(RegistryError.Code.SIZE_INVALID, 413, what + " of " + contentLength()
                    + " bytes is over the " + limit + " this registry takes");
        }
        byte[] bytes = body().readNBytes(limit + 1);
        if (bytes.length > limit) {
            throw new RegistryError(RegistryError.Code.SIZE_INVALID, 413, what + " is over the " + limit
                    + " bytes this registry takes");
        }
        return bytes;
    }

    boolean committed() {
        return response.isCommitted();
    }

    Exchange header(String name, String value) {
        response.getHeaders().put(name, value);
        return this;
    }

    void send(int status) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, 0L);
        response.write(true, null, callback);
    }

    void send(int status, String type, byte[] body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, type);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
        response.write(true, isHead() ? null : ByteBuffer.wrap(body), callback);
    }

    void sendJson(int status, JsonNode body) throws IOException {
        send(status, "application/json", JSON.writeValueAsBytes(body));
    }

    /**
     * {@code length} bytes of a stored blob from {@code offset}, read into pooled 64 KiB direct
     * buffers and written as the socket takes them. (Mapping the blob instead would count every
     * page sent in the server's RSS until a GC unmapped it: 2 GiB after one copy of a 2 GiB image.)
     */
    void sendFile(int status, String type, Path file, long offset, long length) {
        start(status, type, length);
        if (isHead() || length == 0) {
            response.write(true, null, callback);
            return;
        }
        ByteBufferPool.Sized buffers = new ByteBufferPool.Sized(request.getComponents().getByteBufferPool(), true, BUFFER);
        Content.copy(Content.Source.from(buffers, file, offset, length), response, callback);
    }

    /** As {@link #sendFile}, for a pushed blob still in staging, read through the upload. */
    void sendUpload(int status, String type, Upload upload, long offset, long length) throws Exception {
        start(status, type, length);
        if (isHead() || length == 0) {
            response.write(true, null, callback);
            return;
        }
        ByteBuffer buffer = ByteBuffer.allocate((int) Math.min(1 << 20, length));
        for (long done = 0; done < length; ) {
            buffer.clear().limit((int) Math.min(buffer.capacity(), length - done));
            int n = upload.read(buffer, offset + done);
            if (n <= 0) {
                throw new IOException("staged blob ended early");
            }
            done += n;
            write(done == length, buffer.flip());
        }
        callback.succeeded();
    }

    private void start(int status, String type, long length) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, type);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, length);
    }

    private void write(boolean last, ByteBuffer buffer) throws IOException {
        try (Blocker.Callback written = Blocker.callback()) {
            response.write(last, buffer, written);
            written.block();
        }
    }

    void fail(Throwable e) {
        callback.failed(e);
    }
}
