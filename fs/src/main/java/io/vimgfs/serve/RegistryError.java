package io.vimgfs.serve;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A request the registry refuses, as the distribution spec's error codes: the HTTP status, the
 * code a client branches on, and a message a person reads. Thrown anywhere below the handler,
 * answered as {@code {"errors":[{"code":…,"message":…}]}}.
 */
final class RegistryError extends Exception {
    enum Code {
        BLOB_UNKNOWN(404),
        BLOB_UPLOAD_INVALID(400),
        BLOB_UPLOAD_UNKNOWN(404),
        DIGEST_INVALID(400),
        MANIFEST_BLOB_UNKNOWN(400),
        MANIFEST_INVALID(400),
        MANIFEST_UNKNOWN(404),
        NAME_INVALID(400),
        NAME_UNKNOWN(404),
        SIZE_INVALID(400),
        TAG_INVALID(400),
        RANGE_INVALID(416),
        PAGINATION_NUMBER_INVALID(400),
        UNAUTHORIZED(401),
        DENIED(403),
        UNSUPPORTED(405),
        TOOMANYREQUESTS(429);

        final int status;

        Code(int status) {
            this.status = status;
        }
    }

    final Code code;
    final int status;
    /** Headers the error response carries, such as {@code Content-Range: bytes *}{@code /SIZE} on a 416. */
    final Map<String, String> headers = new LinkedHashMap<>();

    RegistryError(Code code, String message) {
        this(code, code.status, message);
    }

    RegistryError(Code code, int status, String message) {
        super(message, null, false, false);
        this.code = code;
        this.status = status;
    }

    RegistryError with(String header, String value) {
        headers.put(header, value);
        return this;
    }
}
