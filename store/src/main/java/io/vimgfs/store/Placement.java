package io.vimgfs.store;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.LongConsumer;

/**
 * Places uploads as images (SPEC §4): one upload under a name, an artifact from elsewhere byte
 * for byte, a file or stream copied in (runs of zeros kept as holes), or many files with one
 * commit per {@value #BATCH_COMMIT}, all of a chunk placed or none. Each is staged by
 * {@link Admission} without the lock, then admitted in a {@link GroupCommit} request. An upload
 * is consumed: placed, or on any failure dropped, and in both cases closed.
 */
final class Placement {
    static final int BATCH_COMMIT = 1000;
    static final String ADD = "add an image";

    private final ImageStore store;
    private final Admission admission;
    private final GroupCommit commits;

    Placement(ImageStore store, Admission admission, GroupCommit commits) {
        this.store = store;
        this.admission = admission;
        this.commits = commits;
    }

    /**
     * Hashes, checks and places an upload under the reference's name (SPEC §4, §6). The upload is
     * consumed: placed, or on any failure dropped, and in both cases closed.
     */
    ImageInfo place(Upload upload, Reference reference) throws IOException {
        try {
            store.refresh();
            Admission.Staged staged = admission.stage(upload, reference, store.catalog());
            Catalog after = commits.change(ADD, (catalog, batch) ->
                    Admission.named(catalog, reference.name(), admission.admit(catalog, staged, Optional.empty(), batch)));
            return after.info(after.image(staged.digest()).orElseThrow());
        } finally {
            upload.abandon();
        }
    }

    /**
     * Places a vimgfs artifact from elsewhere byte for byte: its manifest and config are stored as
     * given, so the image keeps the manifest digest it had where it came from, and so is the chunk
     * index it names, if any (checked against the manifest and the layer's size). The layer is
     * hashed, pinned and probed exactly as {@link #place} does, and the manifest must describe it
     * truly: its digest, size, format, virtual size and backing. The upload is consumed.
     */
    ImageInfo placeArtifact(Upload layer, byte[] manifest, byte[] config, Optional<byte[]> chunks, Reference reference)
            throws IOException {
        try {
            store.refresh();
            Admission.Described described = new Admission.Described(
                    OciLayout.parseImage(Digest.of(BlobFiles.sha256(manifest)), manifest, config), manifest, config, chunks);
            Admission.Staged staged = admission.stage(layer, described, reference, store.catalog());
            Catalog after = commits.change("place an image", (catalog, batch) -> Admission.named(catalog, reference.name(),
                    admission.admit(catalog, staged, Optional.of(described), batch)));
            return after.info(after.image(staged.digest()).orElseThrow());
        } finally {
            layer.abandon();
        }
    }

    ImageInfo importFile(Path source, Reference reference, LongConsumer progress) throws IOException {
        try (InputStream in = Files.newInputStream(source)) {
            return importStream(in, reference, progress);
        }
    }

    ImageInfo importStream(InputStream in, Reference reference, LongConsumer progress) throws IOException {
        Upload upload = store.beginUpload();
        try {
            upload.copyFrom(in, progress);
            return place(upload, reference);
        } finally {
            upload.abandon();
        }
    }

    /** A base must come before the overlays that name it. */
    List<ImageInfo> importAll(List<ImageStore.ImportItem> items, LongConsumer progress) throws IOException {
        List<ImageInfo> placed = new ArrayList<>();
        for (int from = 0; from < items.size(); from += BATCH_COMMIT) {
            placed.addAll(importChunk(items.subList(from, Math.min(items.size(), from + BATCH_COMMIT)), progress));
        }
        return placed;
    }

    private List<ImageInfo> importChunk(List<ImageStore.ImportItem> items, LongConsumer progress) throws IOException {
        List<Upload> uploads = new ArrayList<>();
        try {
            store.refresh();
            List<Admission.Staged> staged = new ArrayList<>();
            for (ImageStore.ImportItem item : items) {
                Upload upload = store.beginUpload();
                uploads.add(upload);
                staged.add(stage(item, upload, progress));
            }
            List<Digest> layers = new ArrayList<>();
            Catalog after = commits.change(ADD, (catalog, batch) -> {
                layers.clear();
                List<Change> changes = new ArrayList<>();
                Catalog working = catalog; // so a base placed earlier in the chunk is there for its overlays
                for (Admission.Staged s : staged) {
                    StoredImage image = admission.admit(working, s, Optional.empty(), batch);
                    List<Change> one = Admission.named(working, s.reference().name(), image);
                    working = working.apply(one);
                    changes.addAll(one);
                    layers.add(image.layer());
                }
                return changes;
            });
            return layers.stream().map(layer -> after.info(after.image(layer).orElseThrow())).toList();
        } finally {
            for (Upload upload : uploads) {
                upload.abandon();
            }
        }
    }

    private Admission.Staged stage(ImageStore.ImportItem item, Upload upload, LongConsumer progress) throws IOException {
        try (InputStream in = Files.newInputStream(item.file())) {
            upload.copyFrom(in, progress);
            return admission.stage(upload, item.reference(), store.catalog());
        } catch (StoreException e) {
            throw e;
        } catch (IOException e) {
            throw new IOException(item.file() + ": " + e.getMessage(), e);
        }
    }
}
