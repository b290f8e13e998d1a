package io.vimgfs.store;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * OCI content that is not a disk image, kept byte for byte so a registry client gets back what
 * it pushed: a container image, an image index, a signature or SBOM that refers to another
 * manifest. It is named in {@code index.json} by a descriptor (see {@link ForeignKey}) and never
 * appears in the mount. It owns no crash protocol: its blobs go into {@code blobs/} through the
 * {@link CommitBatch} (durable, undone if the request fails) and one journal frame names it, as
 * every commit ({@link GroupCommit}); gc follows its descriptors through their manifests.
 */
final class ForeignContent {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final GroupCommit commits;
    private final BlobFiles files;

    ForeignContent(GroupCommit commits, BlobFiles files) {
        this.commits = commits;
        this.files = files;
    }

    /**
     * Names a manifest (or index) in a repository under a tag, or under its own digest when
     * {@code reference} is one. Every blob it references must be stored or among {@code pushed}
     * (sealed uploads, installed here and consumed by the caller's close); every manifest an index
     * lists must be stored. A tag that named a disk image names this instead.
     */
    Digest push(String repository, String reference, byte[] manifest, String mediaType, Map<Digest, Upload> pushed)
            throws IOException {
        Digest digest = Digest.of(BlobFiles.sha256(manifest));
        OciLayout.ManifestRefs refs = OciLayout.references(digest, manifest);
        for (Upload upload : pushed.values()) {
            upload.sync(); // durable before the lock is taken, as an image's layer is
        }
        ForeignKey key = new ForeignKey(repository, reference.startsWith(Digest.ALGORITHM + ":") ? digest.toString() : reference);
        ObjectNode descriptor = JSON.createObjectNode().put("mediaType", mediaType).put("digest", digest.toString())
                .put("size", manifest.length);
        String artifactType = JSON.readTree(manifest).path("artifactType").asText("");
        if (!artifactType.isEmpty() && !artifactType.equals(OciLayout.ARTIFACT_TYPE)) {
            descriptor.put("artifactType", artifactType); // vimgfs's own type marks our images in index.json
        }
        key.annotate(descriptor);
        commits.change("keep OCI content", (catalog, batch) -> {
            List<Digest> blobs = new ArrayList<>(refs.layers());
            refs.config().ifPresent(blobs::add);
            for (Digest blob : blobs) {
                Upload upload = pushed.get(blob);
                if (files.exists(blob)) {
                    continue; // stored already: the upload, if any, is dropped by its owner
                } else if (upload != null) {
                    batch.installBlob(upload, blob);
                } else {
                    throw new BlobUnknownException(blob, "blob");
                }
            }
            for (Digest child : refs.manifests()) {
                if (!files.exists(child)) {
                    throw new BlobUnknownException(child, "manifest");
                }
            }
            batch.writeBlob(manifest, true);
            List<Change> changes = new ArrayList<>();
            if (key.isTag()) {
                ImageName name = new ImageName(repository, reference);
                if (catalog.digestOf(name).isPresent()) {
                    changes.add(new Change.RemoveName(name));
                }
            }
            changes.add(new Change.SetForeign(key, descriptor));
            return changes;
        });
        return digest;
    }

    /** Removes what the key names; false if it named nothing. */
    boolean remove(ForeignKey key) throws IOException {
        boolean[] found = new boolean[1];
        commits.change("remove OCI content", (catalog, batch) -> {
            found[0] = catalog.foreign(key).isPresent();
            return found[0] ? List.of(new Change.RemoveForeign(key)) : List.of();
        });
        return found[0];
    }

    /** The keys of the foreign content named in a repository, by tag or by digest. */
    static List<ForeignKey> keys(Catalog catalog, String repository) {
        List<ForeignKey> keys = new ArrayList<>();
        for (var descriptor : catalog.foreign()) {
            ForeignKey.of(descriptor).filter(k -> k.repository().equals(repository)).ifPresent(keys::add);
        }
        return keys;
    }

    static Optional<Digest> digestOf(com.fasterxml.jackson.databind.JsonNode descriptor) {
        try {
            return Optional.of(Digest.parse(descriptor.path("digest").asText()));
        } catch (InvalidNameException e) {
            return Optional.empty();
        }
    }
}
