package io.vimgfs.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.vimgfs.serve.RegistryError.Code;
import io.vimgfs.store.BlobUnknownException;
import io.vimgfs.store.ChunkIndex;
import io.vimgfs.store.Digest;
import io.vimgfs.store.DigestMismatchException;
import io.vimgfs.store.ImageFormat;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import io.vimgfs.store.StoreDamagedException;
import io.vimgfs.store.registry.ContainerDisks;
import io.vimgfs.store.registry.RegistryException;
import io.vimgfs.store.RegistryContent;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The write side of the distribution API: blob uploads (monolithic, chunked, single-shot and
 * cross-repository mounts), manifest {@code PUT}, and deletes. A manifest is the commit: a vimgfs
 * disk artifact pushed by tag is placed through {@link ImageStore#placeArtifact}, probed and
 * checked exactly as a pull places it; anything else (a container image, an index, a referrer) is
 * kept byte for byte through {@link RegistryContent#keep}, never mounted. Either is acknowledged
 * once the store's journal holds it.
 */
final class Pushes {
    static final String VIMGFS_ARTIFACT = "application/vnd.vimgfs.image.v1";
    static final int MAX_MANIFEST = 4 << 20;
    private static final int MAX_CONFIG = 1 << 20;
    private static final Set<String> MANIFEST_TYPES = Set.of(
            "application/vnd.oci.image.manifest.v1+json", Pulls.INDEX_MEDIA_TYPE,
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json");
    private static final Pattern CONTENT_RANGE = Pattern.compile("(?:bytes )?(\\d+)-(\\d+)(?:/\\d+|/\\*)?");

    private final ImageStore store;
    private final RegistryContent content;
    private final Uploads uploads;

    Pushes(ImageStore store, RegistryContent content, Uploads uploads) {
        this.store = store;
        this.content = content;
        this.uploads = uploads;
    }

    /** {@code POST /v2/NAME/blobs/uploads/}: a mount from another repository, a single-shot upload, or a new session. */
    void startUpload(Exchange exchange, String repository) throws Exception {
        Optional<String> mount = exchange.query("mount");
        if (mount.isPresent()) {
            Digest digest = Routes.digest(mount.get());
            if (has(digest)) {
                created(exchange, repository, digest);
                return;
            }
        }
        Uploads.Session session = uploads.start(repository);
        Optional<String> digest = exchange.query("digest");
        if (digest.isPresent()) {
            Digest expected = Routes.digest(digest.get());
            uploads.append(session, exchange.body(), OptionalLong.empty(), exchange.contentLength());
            created(exchange, repository, uploads.finish(session, expected));
            return;
        }
        inProgress(exchange, session, 202);
    }

    /** {@code PATCH}: a chunk, in order when it says where it starts. */
    void appendChunk(Exchange exchange, String repository, String id) throws Exception {
        Uploads.Session session = uploads.session(repository, id);
        uploads.append(session, exchange.body(), chunkStart(exchange), exchange.contentLength());
        inProgress(exchange, session, 202);
    }

    /** {@code PUT ?digest=}: the last chunk, if any, then the digest check. */
    void finishUpload(Exchange exchange, String repository, String id) throws Exception {
        Uploads.Session session = uploads.session(repository, id);
        Digest expected = Routes.digest(exchange.query("digest").orElseThrow(() ->
                new RegistryError(Code.DIGEST_INVALID, "PUT of an upload needs ?digest=sha256:<hex>")));
        if (exchange.contentLength() != 0) {
            uploads.append(session, exchange.body(), chunkStart(exchange), exchange.contentLength());
        }
        created(exchange, repository, uploads.finish(session, expected));
    }

    void uploadStatus(Exchange exchange, String repository, String id) throws Exception {
        inProgress(exchange, uploads.session(repository, id), 204);
    }

    void cancelUpload(Exchange exchange, String repository, String id) throws Exception {
        uploads.cancel(uploads.session(repository, id));
        exchange.send(204);
    }

    /**
     * {@code PUT /v2/NAME/manifests/REF}. A vimgfs disk artifact pushed by tag is placed (its layer
     * and config must have been pushed, or be stored); anything else is refused with {@code DENIED}
     * and a message, and nothing of it is named.
     */
    void putManifest(Exchange exchange, String repository, String reference) throws Exception {
        Routes.checkReference(reference);
        byte[] bytes = exchange.bodyAtMost(MAX_MANIFEST, "a manifest");
        Digest digest = Digest.parse("sha256:" + sha256(bytes));
        if (Routes.isDigest(reference) && !Routes.digest(reference).equals(digest)) {
            throw new RegistryError(Code.DIGEST_INVALID, "the manifest hashes to " + digest + ", not " + reference);
        }
        JsonNode manifest;
        try {
            manifest = Exchange.JSON.readTree(bytes);
        } catch (IOException e) {
            throw new RegistryError(Code.MANIFEST_INVALID, "the manifest is not JSON: " + e.getMessage());
        }
        String mediaType = manifest.path("mediaType").asText(exchange.header("Content-Type").orElse("").split(";")[0].strip());
        if (!manifest.isObject() || manifest.path("schemaVersion").asInt() != 2 || !MANIFEST_TYPES.contains(mediaType)) {
            throw new RegistryError(Code.MANIFEST_INVALID, "not an OCI or Docker schema 2 manifest or index (mediaType "
                    + mediaType + ")");
        }
        Digest stored;
        Optional<JsonNode> disk = VIMGFS_ARTIFACT.equals(manifest.path("artifactType").asText()) ? diskLayer(manifest)
                : Optional.empty();
        if (disk.isPresent() && !Routes.isDigest(reference)) {
            Digest layer = Routes.digest(disk.get().path("digest").asText());
            Digest config = Routes.digest(manifest.path("config").path("digest").asText());
            Optional<Digest> chunks = Optional.empty();
            for (JsonNode l : manifest.path("layers")) {
                if (ChunkIndex.MEDIA_TYPE.equals(l.path("mediaType").asText())) {
                    chunks = Optional.of(Routes.digest(l.path("digest").asText()));
                }
            }
            place(new ImageName(repository, reference), bytes, layer, config,
                    chunks.map(c -> new Sized(c, ChunkIndex.blobSize(Math.max(0, disk.get().path("size").asLong())))));
            stored = content.manifest(repository, reference).map(RegistryContent.Manifest::digest).orElse(digest);
        } else {
            stored = keep(repository, reference, bytes, mediaType, manifest);
        }
        exchange.header("Location", "/v2/" + repository + "/manifests/" + stored)
                .header("Docker-Content-Digest", stored.toString());
        if (manifest.path("subject").path("digest").isTextual()) {
            exchange.header("OCI-Subject", manifest.path("subject").path("digest").asText());
        }
        exchange.send(201);
    }

    /**
     * The disk layer of a manifest vimgfs places as an image: one {@code application/vnd.vimgfs.disk.*}
     * layer and at most its chunk index beside it. Anything else is kept as OCI content.
     */
    private static Optional<JsonNode> diskLayer(JsonNode manifest) {
        List<JsonNode> disks = new ArrayList<>();
        int others = 0;
        for (JsonNode layer : manifest.path("layers")) {
            String mediaType = layer.path("mediaType").asText();
            if (ImageFormat.isDiskMediaType(mediaType)) {
                disks.add(layer);
            } else if (!ChunkIndex.MEDIA_TYPE.equals(mediaType) || others++ > 0) {
                return Optional.empty();
            }
        }
        return disks.size() == 1 ? Optional.of(disks.get(0)) : Optional.empty();
    }

    /** A blob the manifest names and the most bytes it may have. */
    private record Sized(Digest digest, long maxBytes) {
    }

    private ImageInfo place(ImageName name, byte[] manifest, Digest layer, Digest config, Optional<Sized> chunks)
            throws Exception {
        if (store.image(layer).isPresent()) {
            uploads.discard(layer);
            return store.tag(layer.toString(), name); // the disk is stored: only the name is new
        }
        byte[] configBytes = blobBytes(config, "config", MAX_CONFIG);
        Optional<byte[]> chunkBytes = chunks.isPresent()
                ? Optional.of(blobBytes(chunks.get().digest(), "chunk index", chunks.get().maxBytes())) : Optional.empty();
        Upload upload = uploads.claim(layer).orElseThrow(() -> new RegistryError(Code.MANIFEST_BLOB_UNKNOWN,
                "the manifest's layer " + layer + " was not pushed"));
        try {
            ImageInfo placed = store.placeArtifact(upload, manifest, configBytes, chunkBytes,
                    new Reference(name, Optional.empty()));
            uploads.discard(config);
            if (chunks.isPresent()) {
                uploads.discard(chunks.get().digest());
            }
            return placed;
        } catch (ImageRejectedException e) {
            uploads.discard(config);
            throw new RegistryError(Code.DENIED, "refused: " + e.getMessage());
        } catch (DigestMismatchException e) {
            throw new RegistryError(Code.MANIFEST_INVALID, "the manifest does not describe its layer truly: " + e.getMessage());
        }
    }

    /** Any other manifest or index, kept byte for byte and never mounted, with the blobs pushed for it. */
    private Digest keep(String repository, String reference, byte[] bytes, String mediaType, JsonNode manifest)
            throws Exception {
        Map<Digest, Upload> pushed = new HashMap<>();
        List<JsonNode> blobs = new ArrayList<>();
        manifest.path("layers").forEach(blobs::add);
        if (manifest.has("config")) {
            blobs.add(manifest.path("config"));
        }
        for (JsonNode blob : blobs) {
            Digest digest;
            try {
                digest = Routes.digest(blob.path("digest").asText());
            } catch (RegistryError e) {
                throw new RegistryError(Code.MANIFEST_INVALID, "the manifest names a bad blob digest: " + e.getMessage());
            }
            uploads.finished(digest).ifPresent(f -> pushed.put(digest, f.upload()));
        }
        try {
            Optional<Digest> disk = Routes.isDigest(reference) ? Optional.empty() : containerDisk(repository, reference, manifest, pushed);
            Digest kept = content.keep(repository, reference, bytes, mediaType, pushed, disk);
            for (Digest digest : pushed.keySet()) {
                uploads.discard(digest); // installed: its staging file is now the blob
            }
            return kept;
        } catch (BlobUnknownException e) {
            throw new RegistryError(Code.MANIFEST_BLOB_UNKNOWN, e.getMessage());
        } catch (StoreDamagedException e) {
            throw new RegistryError(Code.MANIFEST_INVALID, e.getMessage());
        }
    }

    /**
     * A KubeVirt containerDisk (filesystem layers holding one file under {@code disk/}) also gets
     * its disk placed under the tag, probed and checked as {@code vimgfs pull} places one; an
     * ordinary container image has no such file and is only kept.
     */
    private Optional<Digest> containerDisk(String repository, String tag, JsonNode manifest, Map<Digest, Upload> pushed)
            throws Exception {
        JsonNode layers = manifest.path("layers");
        if (layers.size() == 0) {
            return Optional.empty();
        }
        List<InputStream> streams = new ArrayList<>();
        try {
            for (JsonNode layer : layers) {
                String type = layer.path("mediaType").asText();
                if (!type.contains("tar") && !type.contains("rootfs.diff")) {
                    return Optional.empty();
                }
                Digest digest = Routes.digest(layer.path("digest").asText());
                Optional<RegistryContent.Blob> stored = content.blob(digest);
                if (stored.isPresent()) {
                    streams.add(Files.newInputStream(stored.get().file()));
                } else if (pushed.containsKey(digest)) {
                    streams.add(pushed.get(digest).inputStream());
                } else {
                    throw new RegistryError(Code.MANIFEST_BLOB_UNKNOWN, "the manifest's layer " + digest + " was not pushed");
                }
            }
            return ContainerDisks.place(store, streams, new Reference(new ImageName(repository, tag), Optional.empty()),
                    repository + ":" + tag).map(ImageInfo::digest);
        } catch (ImageRejectedException | RegistryException e) {
            for (Digest blob : pushed.keySet()) {
                uploads.discard(blob); // a refused disk's blobs are garbage: they no longer count against the limits
            }
            throw new RegistryError(Code.DENIED, "refused: " + e.getMessage());
        } finally {
            for (InputStream stream : streams) {
                stream.close();
            }
        }
    }

    /** A small blob the manifest names (its config, its chunk index), stored already or pushed for it. */
    private byte[] blobBytes(Digest digest, String role, long maxBytes) throws Exception {
        Optional<RegistryContent.Blob> stored = content.blob(digest);
        if (stored.isPresent()) {
            long size = Files.size(stored.get().file());
            if (size > maxBytes) {
                throw new RegistryError(Code.MANIFEST_INVALID, "the " + role + " of " + size + " bytes is over " + maxBytes);
            }
            return Files.readAllBytes(stored.get().file());
        }
        Uploads.Finished pushed = uploads.finished(digest).orElseThrow(() -> new RegistryError(Code.MANIFEST_BLOB_UNKNOWN,
                "the manifest's " + role + " " + digest + " was not pushed"));
        if (pushed.size() > maxBytes) {
            throw new RegistryError(Code.MANIFEST_INVALID, "the " + role + " of " + pushed.size() + " bytes is over " + maxBytes);
        }
        ByteBuffer bytes = ByteBuffer.allocate((int) pushed.size());
        while (bytes.hasRemaining() && pushed.upload().read(bytes, bytes.position()) > 0) {
            // reads until full
        }
        return bytes.array();
    }

    /** {@code DELETE /v2/NAME/manifests/REF}: a tag, or every tag of the repository naming that manifest. */
    void deleteManifest(Exchange exchange, String repository, String reference) throws Exception {
        Routes.checkReference(reference);
        List<String> tags = Routes.isDigest(reference)
                ? tagsOf(repository, Routes.digest(reference))
                : content.manifest(repository, reference).isPresent() ? List.of(reference) : List.of();
        int removed = 0;
        for (String tag : tags) {
            ImageName name = new ImageName(repository, tag);
            if (store.image(name).isPresent()) {
                store.untag(name);
                removed++;
            }
        }
        removed += content.forget(repository, reference);
        if (removed == 0) {
            throw new RegistryError(Code.MANIFEST_UNKNOWN, "no manifest " + reference + " in " + repository);
        }
        exchange.send(202);
    }

    /** {@code DELETE /v2/NAME/blobs/DIGEST}: only a pushed blob no manifest took; a stored one goes with its image. */
    void deleteBlob(Exchange exchange, String digestText) throws Exception {
        Digest digest = Routes.digest(digestText);
        if (uploads.discard(digest)) {
            exchange.send(202);
        } else if (content.blob(digest).isPresent()) {
            throw new RegistryError(Code.UNSUPPORTED, "blob " + digest + " is part of a stored image: it goes when the "
                    + "image's last tag is deleted");
        } else {
            throw new RegistryError(Code.BLOB_UNKNOWN, "no blob " + digest);
        }
    }

    private List<String> tagsOf(String repository, Digest manifest) throws IOException {
        List<String> tags = new ArrayList<>();
        for (String tag : content.tags(repository)) {
            if (content.manifest(repository, tag).map(m -> m.digest().equals(manifest)).orElse(false)) {
                tags.add(tag);
            }
        }
        return tags;
    }

    private boolean has(Digest digest) throws IOException {
        return content.blob(digest).isPresent() || uploads.finished(digest).isPresent();
    }

    private static OptionalLong chunkStart(Exchange exchange) throws RegistryError {
        Optional<String> range = exchange.header("Content-Range");
        if (range.isEmpty()) {
            return OptionalLong.empty();
        }
        Matcher m = CONTENT_RANGE.matcher(range.get().strip());
        if (!m.matches()) {
            throw new RegistryError(Code.BLOB_UPLOAD_INVALID, 416, "Content-Range: " + range.get() + " is not FIRST-LAST");
        }
        long first = Long.parseLong(m.group(1));
        long last = Long.parseLong(m.group(2));
        long length = exchange.contentLength();
        if (last < first || (length >= 0 && length != last - first + 1)) {
            throw new RegistryError(Code.BLOB_UPLOAD_INVALID, 416, "Content-Range: " + range.get() + " does not match the "
                    + length + " bytes sent");
        }
        return OptionalLong.of(first);
    }

    private static void created(Exchange exchange, String repository, Digest digest) {
        exchange.header("Location", "/v2/" + repository + "/blobs/" + digest)
                .header("Docker-Content-Digest", digest.toString())
                .send(201);
    }

    private static void inProgress(Exchange exchange, Uploads.Session session, int status) {
        long offset = session.offset();
        exchange.header("Location", "/v2/" + session.repository + "/blobs/uploads/" + session.id)
                .header("Range", "0-" + Math.max(0, offset - 1))
                .header("Docker-Upload-UUID", session.id)
                .send(status);
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
