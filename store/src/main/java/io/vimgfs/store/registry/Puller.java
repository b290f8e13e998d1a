package io.vimgfs.store.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vimgfs.store.ChunkIndex;
import io.vimgfs.store.Digest;
import io.vimgfs.store.DigestMismatchException;
import io.vimgfs.store.ImageFormat;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.PartialDownload;
import io.vimgfs.store.Reference;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.LongConsumer;

/**
 * {@code vimgfs pull} from a registry: reads the manifest (choosing from an index by platform and
 * disk type), tells what kind of image it is, and streams its disk into an upload that the store
 * places (probed and checked as {@code incoming/} does). vimgfs artifacts are stored byte for
 * byte; KubeVirt containerDisks have their layers applied and the one file under {@code disk/}
 * placed; podman machine-os disks are decompressed by file name. Nothing is placed unless every
 * byte matched its descriptor. A vimgfs layer of {@link Ranges#minBytes} or more comes in
 * concurrent ranges into a partial download that a killed pull, run again, resumes.
 */
public final class Puller {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What to pick from an index: an architecture (either spelling) and a machine-os disk type. */
    public record Choice(String arch, String diskType) {
        public Choice {
            arch = normaliseArch(arch);
        }

        /** The host's architecture, as OCI platforms name it. */
        public static String hostArch() {
            return normaliseArch(System.getProperty("os.arch"));
        }
    }

    private final ImageStore store;
    private final RegistryClient.Options options;
    private final CredentialLookup credentials;
    private final TransferProgress progress;
    private final Ranges ranges;

    /**
     * How a large vimgfs layer is fetched: blobs of {@code minBytes} or more in ranges of
     * {@code rangeBytes}, {@code inFlight} at a time, resumable; {@code inFlight} 0 streams every
     * blob in one request, as smaller ones always are.
     */
    public record Ranges(long minBytes, long rangeBytes, int inFlight) {
        public static final long DEFAULT_MIN_BYTES = 64L << 20;
        public static final long DEFAULT_RANGE_BYTES = 16L << 20;
        public static final int DEFAULT_IN_FLIGHT = 4;

        public Ranges {
            if (minBytes < 1 || rangeBytes < 1 || inFlight < 0) {
                throw new IllegalArgumentException("ranges of " + rangeBytes + " bytes, " + inFlight + " in flight, from "
                        + minBytes);
            }
        }

        public static Ranges defaults() {
            return new Ranges(DEFAULT_MIN_BYTES, DEFAULT_RANGE_BYTES, DEFAULT_IN_FLIGHT);
        }

        public Ranges withInFlight(int requests) {
            return new Ranges(minBytes, rangeBytes, requests);
        }
    }

    public Puller(ImageStore store, RegistryClient.Options options, CredentialLookup credentials, TransferProgress progress,
            Ranges ranges) {
        this.store = store;
        this.options = options;
        this.credentials = credentials;
        this.progress = progress;
        this.ranges = ranges;
    }

    static String normaliseArch(String arch) {
        return switch (arch.toLowerCase(Locale.ROOT)) {
            case "x86_64", "x86-64", "amd64" -> "amd64";
            case "aarch64", "arm64" -> "arm64";
            case "ppc64le", "ppc64el" -> "ppc64le";
            default -> arch.toLowerCase(Locale.ROOT);
        };
    }

    /** Pulls {@code source} and names it {@code name}. */
    public ImageInfo pull(RegistryReference source, Reference name, Choice choice) throws IOException {
        String display = source.toString();
        Resolved resolved = resolve(source, choice);
        RegistryClient client = resolved.client();
        RegistryClient.Manifest manifest = resolved.manifest();
        JsonNode tree = resolved.tree();
        Optional<JsonNode> chosen = resolved.chosen();
        if (MediaTypes.VIMGFS_ARTIFACT.equals(tree.path("artifactType").asText())) {
            return pullArtifact(client, source, manifest, tree, name, display);
        }
        boolean machineOs = chosen.map(c -> c.path("annotations").has(MediaTypes.DISK_TYPE)).orElse(false)
                || tree.path("annotations").has(MediaTypes.DISK_TYPE)
                || tree.path("layers").size() == 1 && tree.path("layers").get(0).path("annotations").has(MediaTypes.TITLE)
                        && !tree.path("layers").get(0).path("mediaType").asText().contains("tar");
        return machineOs ? pullMachineDisk(client, source, tree, name, display)
                : pullContainerDisk(client, source, tree, name, display);
    }

    /** The image manifest a reference names (an index resolved to the child {@code choice} picks), and its client. */
    record Resolved(RegistryClient client, RegistryClient.Manifest manifest, JsonNode tree, Optional<JsonNode> chosen) {
        boolean isVimgfsArtifact() {
            return MediaTypes.VIMGFS_ARTIFACT.equals(tree.path("artifactType").asText());
        }
    }

    Resolved resolve(RegistryReference source, Choice choice) throws IOException {
        String display = source.toString();
        RegistryClient client = RegistryClient.forRegistry(source, options, credentials);
        RegistryClient.Manifest manifest = client.manifest(source.repository(), source.manifestReference(), display);
        JsonNode tree = parse(manifest.bytes(), display);
        Optional<JsonNode> chosen = Optional.empty();
        if (MediaTypes.isIndex(mediaType(manifest, tree)) || tree.has("manifests")) {
            chosen = Optional.of(choose(tree, choice, display));
            Digest child = digest(chosen.get(), display);
            manifest = client.manifest(source.repository(), child.toString(), display);
            if (manifest.bytes().length != chosen.get().path("size").asLong(-1)) {
                throw new RegistryException(RegistryException.Kind.DIGEST_MISMATCH, display + ": manifest " + child
                        + " is not the size its index says");
            }
            tree = parse(manifest.bytes(), display);
        }
        if (tree.path("schemaVersion").asInt() != 2 || !tree.path("layers").isArray()) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": not an OCI or Docker v2 image manifest");
        }
        return new Resolved(client, manifest, tree, chosen);
    }

    private ImageInfo pullArtifact(RegistryClient client, RegistryReference source, RegistryClient.Manifest manifest,
            JsonNode tree, Reference name, String display) throws IOException {
        JsonNode disk = diskLayer(tree, display);
        Digest layer = digest(disk, display);
        long size = disk.path("size").asLong(-1);
        if (name.pin().isPresent() && !name.pin().get().equals(layer)) {
            throw new DigestMismatchException(name.pin().get(), layer); // known from the manifest: transfer nothing
        }
        if (store.image(layer).isPresent()) {
            progress.begin("pull", 0);
            return store.tag(layer.toString(), name.name()); // the disk is here already: only the name is new
        }
        JsonNode configDescriptor = tree.path("config");
        byte[] config = client.smallBlob(source.repository(), digest(configDescriptor, display),
                configDescriptor.path("size").asLong(-1), display);
        Optional<byte[]> chunks = chunkIndex(client, source, tree, size, display);
        progress.begin("pull", size);
        if (size >= ranges.minBytes() && ranges.inFlight() > 0) {
            return pullRanged(client, source, new Described(manifest, config, chunks), layer, size, name, display);
        }
        Upload upload = store.beginUpload();
        try {
            stream(client, source.repository(), layer, size, upload, display);
            return placeArtifact(upload, new Described(manifest, config, chunks), layer, name, display);
        } finally {
            upload.abandon();
        }
    }

    /**
     * A large layer in concurrent ranges into the store's partial download of it, which a killed
     * pull run again resumes; placed (and the partial state removed) once whole, the digest checked
     * as for any upload. A registry that ignores Range gets the blob streamed whole.
     */
    private ImageInfo pullRanged(RegistryClient client, RegistryReference source, Described described, Digest layer,
            long size, Reference name, String display) throws IOException {
        PartialDownload partial = store.resumeDownload(layer, size, ranges.rangeBytes());
        Upload whole;
        try {
            LongConsumer advance = progressOf(partial);
            RangedDownload.Outcome outcome = new RangedDownload(client, source.repository(), layer, partial, options,
                    advance, display).run(ranges.inFlight());
            if (outcome == RangedDownload.Outcome.RANGES_IGNORED) {
                progress.warn(display + ": the registry ignored a Range request (HTTP 200); downloading the blob in "
                        + "one stream instead, which cannot resume if it is interrupted");
                partial.restartWhole();
                stream(client, source.repository(), layer, size, partial.upload(), display);
                whole = partial.upload();
            } else {
                whole = partial.completed();
            }
        } catch (IOException | RuntimeException | Error e) {
            partial.close(); // kept for a rerun to resume
            throw e;
        }
        try {
            return placeArtifact(whole, described, layer, name, display);
        } finally {
            partial.discard(); // placed, or its bytes were refused: a rerun starts afresh either way
        }
    }

    /** The progress of a ranged download: thread-safe, and starting with the bytes an earlier run fetched. */
    private LongConsumer progressOf(PartialDownload partial) {
        LongConsumer serialized = new LongConsumer() {
            @Override
            public synchronized void accept(long bytes) {
                progress.advance(bytes);
            }
        };
        serialized.accept(partial.bytesDone());
        return serialized;
    }

    /** A layer in one GET (resumed by Range if the connection breaks) into an upload from its start. */
    private void stream(RegistryClient client, String repository, Digest layer, long size, Upload upload, String display)
            throws IOException {
        // placeArtifact compares the upload's digest and size with the layer's descriptor
        ResumableBody blob = client.openBlobCheckedByStore(repository, layer, size, progress::advance, display);
        try (blob) {
            upload.copyFrom(blob, n -> { });
            blob.drain();
        }
    }

    /** What a vimgfs manifest brings beside its disk layer: its config, and its chunk index if it has one. */
    private record Described(RegistryClient.Manifest manifest, byte[] config, Optional<byte[]> chunks) {
    }

    /**
     * The disk layer of a vimgfs manifest, chosen by media type: beside it there may be a chunk
     * index ({@link ChunkIndex#MEDIA_TYPE}), which the store checks against the disk.
     */
    static JsonNode diskLayer(JsonNode tree, String display) throws RegistryException {
        List<JsonNode> disks = new ArrayList<>();
        for (JsonNode layer : tree.path("layers")) {
            if (ImageFormat.isDiskMediaType(layer.path("mediaType").asText())) {
                disks.add(layer);
            }
        }
        if (disks.size() != 1) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": a vimgfs image has one disk layer"
                    + " (application/vnd.vimgfs.disk.*), this has " + disks.size());
        }
        return disks.get(0);
    }

    /** The chunk index the disk layer names, fetched whole (its size follows from the disk's), or empty. */
    static Optional<byte[]> chunkIndex(RegistryClient client, RegistryReference source, JsonNode tree, long size,
            String display) throws IOException {
        for (JsonNode layer : tree.path("layers")) {
            if (ChunkIndex.MEDIA_TYPE.equals(layer.path("mediaType").asText())) {
                return Optional.of(client.smallBlob(source.repository(), digest(layer, display),
                        layer.path("size").asLong(-1), ChunkIndex.blobSize(Math.max(size, 0)), display));
            }
        }
        return Optional.empty(); // an image pushed without an index: pulled whole, as before
    }

    private ImageInfo placeArtifact(Upload upload, Described described, Digest layer, Reference name, String display)
            throws IOException {
        try {
            return store.placeArtifact(upload, described.manifest().bytes(), described.config(), described.chunks(), name);
        } catch (DigestMismatchException e) {
            if (name.pin().isPresent() || !e.expected().equals(layer)) {
                throw e;
            }
            throw new RegistryException(RegistryException.Kind.DIGEST_MISMATCH, display + ": the bytes received hash "
                    + "to " + e.actual() + ", not " + layer + "; the source is corrupt or tampered with");
        }
    }

    private ImageInfo pullMachineDisk(RegistryClient client, RegistryReference source, JsonNode tree, Reference name,
            String display) throws IOException {
        JsonNode layers = tree.path("layers");
        if (layers.size() != 1) {
            throw new RegistryException(RegistryException.Kind.NO_DISK, display + ": a machine-os disk artifact has one "
                    + "layer, this has " + layers.size());
        }
        JsonNode layer = layers.get(0);
        String title = layer.path("annotations").path(MediaTypes.TITLE).asText("");
        long size = layer.path("size").asLong(-1);
        progress.begin("pull", size);
        Upload upload = store.beginUpload();
        try {
            ResumableBody blob = client.openBlob(source.repository(), digest(layer, display), size,
                    progress::advance, display);
            try (blob) {
                upload.copyFrom(Decompression.byName(title, blob), n -> { });
                blob.drain();
            }
            return store.place(upload, name);
        } finally {
            upload.abandon();
        }
    }

    private ImageInfo pullContainerDisk(RegistryClient client, RegistryReference source, JsonNode tree, Reference name,
            String display) throws IOException {
        long total = 0;
        for (JsonNode layer : tree.path("layers")) {
            String type = layer.path("mediaType").asText();
            if (!type.contains("tar") && !type.contains("rootfs.diff")) {
                throw new RegistryException(RegistryException.Kind.NO_DISK, display + ": no disk in this image: layer "
                        + layer.path("digest").asText() + " is " + type + ", not a filesystem layer; vimgfs pulls vimgfs "
                        + "images, KubeVirt containerDisks and podman machine-os disks");
            }
            total += layer.path("size").asLong(0);
        }
        progress.begin("pull", total);
        try (ContainerDiskLayers disk = new ContainerDiskLayers(store, display)) {
            for (JsonNode layer : tree.path("layers")) {
                ResumableBody blob = client.openBlob(source.repository(), digest(layer, display),
                        layer.path("size").asLong(-1), progress::advance, display);
                try (blob) {
                    disk.apply(Decompression.byMagic(blob));
                    blob.drain();
                }
            }
            return store.place(disk.theDisk(), name);
        }
    }

    /** The index entry for the wanted platform (and disk type, for machine-os indexes). */
    private static JsonNode choose(JsonNode index, Choice choice, String display) throws RegistryException {
        boolean byDiskType = false;
        for (JsonNode child : index.path("manifests")) {
            byDiskType |= child.path("annotations").has(MediaTypes.DISK_TYPE);
        }
        List<String> offered = new ArrayList<>();
        for (JsonNode child : index.path("manifests")) {
            JsonNode platform = child.path("platform");
            String arch = platform.has("architecture") ? normaliseArch(platform.path("architecture").asText()) : "";
            String diskType = child.path("annotations").path(MediaTypes.DISK_TYPE).asText("");
            offered.add((byDiskType ? diskType + "/" : "") + (arch.isEmpty() ? "any" : arch));
            boolean archMatches = arch.isEmpty() || arch.equals(choice.arch());
            boolean diskMatches = !byDiskType || diskType.equals(choice.diskType());
            boolean os = !platform.has("os") || platform.path("os").asText().equals("linux");
            if (archMatches && diskMatches && os) {
                return child;
            }
        }
        throw new RegistryException(RegistryException.Kind.NO_DISK, display + ": no disk for " + (byDiskType
                ? "--disktype " + choice.diskType() + " " : "") + "--arch " + choice.arch() + " in this index; it has "
                + String.join(", ", offered));
    }

    private static String mediaType(RegistryClient.Manifest manifest, JsonNode tree) {
        return tree.path("mediaType").asText(manifest.mediaType());
    }

    private static JsonNode parse(byte[] bytes, String display) throws RegistryException {
        try {
            JsonNode tree = JSON.readTree(bytes);
            if (tree != null && tree.isObject()) {
                return tree;
            }
        } catch (IOException e) {
            // fall through to the refusal
        }
        throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": the registry sent a manifest that is "
                + "not a JSON object");
    }

    static Digest digest(JsonNode descriptor, String display) throws RegistryException {
        try {
            return Digest.parse(descriptor.path("digest").asText());
        } catch (InvalidNameException e) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, display + ": a descriptor has digest '"
                    + descriptor.path("digest").asText() + "': " + e.rule());
        }
    }
}
