package io.vimgfs.serve;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vimgfs.serve.RegistryError.Code;
import io.vimgfs.store.Digest;
import io.vimgfs.store.RegistryContent;
import java.util.List;
import java.util.Optional;

/**
 * The read side of the distribution API: manifests by tag and digest, blobs (with a single
 * {@code Range}), tag lists and the catalog with {@code n}/{@code last} pagination, and referrers.
 */
final class Pulls {
    static final String INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";
    private static final String BLOB_TYPE = "application/octet-stream";
    /** A page is at most this long, whatever {@code n} asks: a million tags cost one page at a time. */
    static final int MAX_PAGE = 10_000;

    private final RegistryContent content;
    private final Uploads uploads;

    Pulls(RegistryContent content, Uploads uploads) {
        this.content = content;
        this.uploads = uploads;
    }

    void manifest(Exchange exchange, String repository, String reference) throws Exception {
        Routes.checkReference(reference);
        RegistryContent.Manifest manifest = content.manifest(repository, reference).orElseThrow(() ->
                new RegistryError(Code.MANIFEST_UNKNOWN, "no manifest " + reference + " in " + repository));
        exchange.header("Docker-Content-Digest", manifest.digest().toString())
                .send(200, manifest.mediaType(), manifest.bytes());
    }

    void blob(Exchange exchange, String digestText) throws Exception {
        Digest digest = Routes.digest(digestText);
        Optional<RegistryContent.Blob> stored = content.blob(digest);
        Optional<Uploads.Finished> pushed = stored.isPresent() ? Optional.empty() : uploads.finished(digest);
        long size = stored.map(RegistryContent.Blob::size)
                .or(() -> pushed.map(Uploads.Finished::size))
                .orElseThrow(() -> new RegistryError(Code.BLOB_UNKNOWN, "no blob " + digest));
        exchange.header("Docker-Content-Digest", digest.toString()).header("Accept-Ranges", "bytes");
        Optional<ByteRange> range = ByteRange.parse(exchange.header("Range"), size);
        int status = range.isPresent() ? 206 : 200;
        long offset = range.map(ByteRange::first).orElse(0L);
        long length = range.map(ByteRange::length).orElse(size);
        range.ifPresent(r -> exchange.header("Content-Range", "bytes " + r.first() + "-" + r.last() + "/" + size));
        if (stored.isPresent()) {
            exchange.sendFile(status, BLOB_TYPE, stored.get().file(), offset, length);
        } else {
            exchange.sendUpload(status, BLOB_TYPE, pushed.get().upload(), offset, length);
        }
    }

    void tags(Exchange exchange, String repository) throws Exception {
        List<String> tags = content.tags(repository);
        if (tags.isEmpty()) {
            throw new RegistryError(Code.NAME_UNKNOWN, "no repository " + repository);
        }
        ObjectNode body = Exchange.JSON.createObjectNode().put("name", repository);
        page(exchange, tags, body.putArray("tags"), "/v2/" + repository + "/tags/list");
        exchange.sendJson(200, body);
    }

    void catalog(Exchange exchange) throws Exception {
        ObjectNode body = Exchange.JSON.createObjectNode();
        page(exchange, List.copyOf(content.repositories()), body.putArray("repositories"), "/v2/_catalog");
        exchange.sendJson(200, body);
    }

    void referrers(Exchange exchange, String repository, String digestText) throws Exception {
        Digest subject = Routes.digest(digestText);
        Optional<String> artifactType = exchange.query("artifactType");
        ObjectNode index = Exchange.JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", INDEX_MEDIA_TYPE);
        ArrayNode manifests = index.putArray("manifests");
        for (ObjectNode referrer : content.referrers(repository, subject)) {
            if (artifactType.isEmpty() || artifactType.get().equals(referrer.path("artifactType").asText())) {
                manifests.add(referrer);
            }
        }
        artifactType.ifPresent(t -> exchange.header("OCI-Filters-Applied", "artifactType"));
        exchange.send(200, INDEX_MEDIA_TYPE, Exchange.JSON.writeValueAsBytes(index));
    }

    /** The entries after {@code last}, at most {@code n}, and a {@code Link} to the next page when more remain. */
    private static void page(Exchange exchange, List<String> sorted, ArrayNode into, String path) throws RegistryError {
        int n = MAX_PAGE;
        Optional<String> asked = exchange.query("n");
        if (asked.isPresent()) {
            try {
                n = Math.min(MAX_PAGE, Integer.parseInt(asked.get()));
            } catch (NumberFormatException e) {
                n = -1;
            }
            if (n < 0) {
                throw new RegistryError(Code.PAGINATION_NUMBER_INVALID, "n=" + asked.get() + " is not a count");
            }
        }
        Optional<String> last = exchange.query("last");
        int from = 0;
        if (last.isPresent()) {
            int at = java.util.Collections.binarySearch(sorted, last.get());
            from = at >= 0 ? at + 1 : -at - 1;
        }
        int to = Math.min(sorted.size(), from + n);
        sorted.subList(from, to).forEach(into::add);
        if (to < sorted.size() && to > from) {
            exchange.header("Link", "<" + path + "?n=" + n + "&last=" + sorted.get(to - 1) + ">; rel=\"next\"");
        }
    }
}
