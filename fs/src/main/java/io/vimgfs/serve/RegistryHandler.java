package io.vimgfs.serve;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vimgfs.serve.RegistryError.Code;
import io.vimgfs.serve.Routes.Route;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.StoreReadOnlyException;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

/**
 * The distribution API's front door: it checks credentials, matches the route, sends it to the
 * read or write side, and turns every refusal into the spec's JSON error. No exception leaves it
 * but as a response (or, once the response has started, as a failed callback that closes the
 * connection).
 */
final class RegistryHandler extends Handler.Abstract {
    private static final Logger LOG = Logger.getLogger(RegistryHandler.class.getName());
    static final String REALM = "vimgfs";

    /** Who may do what: anyone, or the htpasswd's users (and anyone for reads when {@code anonymousRead}). */
    record Access(boolean readOnly, Optional<BasicAuth> auth, boolean anonymousRead) {
    }

    private final ImageStore store;
    private final Pulls pulls;
    private final Pushes pushes;
    private final Access access;

    RegistryHandler(ImageStore store, Pulls pulls, Pushes pushes, Access access) {
        this.store = store;
        this.pulls = pulls;
        this.pushes = pushes;
        this.access = access;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        Exchange exchange = new Exchange(request, response, callback);
        exchange.header("Docker-Distribution-API-Version", "registry/2.0");
        try {
            Route route = Routes.match(exchange.rawPath()).orElseThrow(() ->
                    new RegistryError(Code.UNSUPPORTED, 404, "no such route: " + exchange.rawPath()));
            boolean read = switch (exchange.method()) {
                case "GET", "HEAD" -> true;
                default -> false;
            };
            authorize(exchange, read);
            if (!read && access.readOnly()) {
                throw new RegistryError(Code.UNSUPPORTED, "this registry is read-only (vimgfs serve --read-only)");
            }
            store.refresh();
            dispatch(exchange, route);
        } catch (RegistryError e) {
            refuse(exchange, e);
        } catch (StoreReadOnlyException e) {
            refuse(exchange, new RegistryError(Code.DENIED, e.getMessage()));
        } catch (InvalidNameException e) {
            refuse(exchange, new RegistryError(Code.NAME_INVALID, e.getMessage()));
        } catch (Throwable e) {
            LOG.log(Level.WARNING, exchange.method() + " " + exchange.rawPath() + " failed", e);
            if (exchange.committed()) {
                exchange.fail(e);
            } else {
                refuse(exchange, new RegistryError(Code.UNSUPPORTED, 500, "internal error: " + e));
            }
        }
        return true;
    }

    private void authorize(Exchange exchange, boolean read) throws RegistryError {
        if (access.auth().isEmpty() || (read && access.anonymousRead())) {
            return;
        }
        if (access.auth().get().user(exchange.header("Authorization")).isEmpty()) {
            throw new RegistryError(Code.UNAUTHORIZED, "authentication required")
                    .with("WWW-Authenticate", "Basic realm=\"" + REALM + "\"");
        }
    }

    private void dispatch(Exchange exchange, Route route) throws Exception {
        String method = exchange.method();
        String name = route.repository();
        String ref = route.reference();
        switch (route.kind()) {
            case BASE -> only(method, "GET", "HEAD").sendJson(exchange, 200);
            case CATALOG -> { only(method, "GET"); pulls.catalog(exchange); }
            case TAGS -> { only(method, "GET"); pulls.tags(exchange, name); }
            case MANIFEST -> {
                switch (only(method, "GET", "HEAD", "PUT", "DELETE").method) {
                    case "PUT" -> pushes.putManifest(exchange, name, ref);
                    case "DELETE" -> pushes.deleteManifest(exchange, name, ref);
                    default -> pulls.manifest(exchange, name, ref);
                }
            }
            case UPLOADS -> { only(method, "POST"); pushes.startUpload(exchange, name); }
            case UPLOAD -> {
                switch (only(method, "GET", "PATCH", "PUT", "DELETE").method) {
                    case "PATCH" -> pushes.appendChunk(exchange, name, ref);
                    case "PUT" -> pushes.finishUpload(exchange, name, ref);
                    case "DELETE" -> pushes.cancelUpload(exchange, name, ref);
                    default -> pushes.uploadStatus(exchange, name, ref);
                }
            }
            case BLOB -> {
                if (only(method, "GET", "HEAD", "DELETE").method.equals("DELETE")) {
                    pushes.deleteBlob(exchange, ref);
                } else {
                    pulls.blob(exchange, ref);
                }
            }
            case REFERRERS -> { only(method, "GET"); pulls.referrers(exchange, name, ref); }
        }
    }

    /** The method, when the route takes it; else 405. */
    private record Allowed(String method) {
        void sendJson(Exchange exchange, int status) throws java.io.IOException {
            exchange.sendJson(status, Exchange.JSON.createObjectNode());
        }
    }

    private static Allowed only(String method, String... allowed) throws RegistryError {
        for (String a : allowed) {
            if (a.equals(method)) {
                return new Allowed(method);
            }
        }
        throw new RegistryError(Code.UNSUPPORTED, method + " is not allowed here (" + String.join(", ", allowed) + ")")
                .with("Allow", String.join(", ", allowed));
    }

    private static void refuse(Exchange exchange, RegistryError e) {
        e.headers.forEach(exchange::header);
        ObjectNode body = Exchange.JSON.createObjectNode();
        body.putArray("errors").addObject().put("code", e.code.name()).put("message", e.getMessage());
        try {
            exchange.sendJson(e.status, body);
        } catch (Exception failed) {
            exchange.fail(failed);
        }
    }
}
