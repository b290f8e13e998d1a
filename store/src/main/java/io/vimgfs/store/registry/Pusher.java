package io.vimgfs.store.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vimgfs.store.ChunkIndex;
import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.Date;
import java.util.Optional;
import java.util.zip.Deflater;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipParameters;

/**
 * {@code vimgfs push}: sends a stored image to a registry, either as the vimgfs artifact the store
 * holds (manifest, config and layer byte for byte) or as a KubeVirt containerDisk built on the
 * way (a gzip tar with {@code disk/disk.img}, 107:107, 0444). Blobs the registry has are not sent
 * again; one another repository of the same registry holds (known from the image's names) is
 * mounted rather than uploaded.
 */
public final class Pusher {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** KubeVirt's qemu user and group: virt-launcher reads the disk as 107:107. */
    private static final int QEMU_ID = 107;
    static final String DISK_FILE = "disk/disk.img";

    /** What to write. */
    public enum Format { VIMGFS, CONTAINERDISK }

    private final ImageStore store;
    private final RegistryClient.Options options;
    private final CredentialLookup credentials;
    private final TransferProgress progress;

    public Pusher(ImageStore store, RegistryClient.Options options, CredentialLookup credentials, TransferProgress progress) {
        this.store = store;
        this.options = options;
        this.credentials = credentials;
        this.progress = progress;
    }

    /**
     * Pushes the image; returns the digest of the manifest the registry now holds. With
     * {@code chunkIndex}, a vimgfs artifact stored without a {@link ChunkIndex} gets one, computed
     * here in a read of the disk and sent as the manifest's second layer; one pulled with an index
     * is sent exactly as it was pulled either way.
     */
    public Digest push(ImageInfo image, RegistryReference destination, Format format, boolean chunkIndex)
            throws IOException {
        RegistryClient client = RegistryClient.forRegistry(destination, options, credentials);
        return format == Format.VIMGFS ? pushArtifact(client, image, destination, chunkIndex)
                : pushContainerDisk(client, image, destination);
    }

    private Digest pushArtifact(RegistryClient client, ImageInfo image, RegistryReference destination, boolean chunkIndex)
            throws IOException {
        String display = destination.toString();
        ImageStore.Artifact artifact = store.artifact(image.digest());
        Optional<String> mountFrom = sourceRepository(image, destination);
        boolean compute = chunkIndex && artifact.chunks().isEmpty();
        progress.begin("push", artifact.layerSize() * (compute ? 2 : 1) + artifact.config().length
                + (compute || artifact.chunks().isPresent() ? ChunkIndex.blobSize(artifact.layerSize()) : 0));
        byte[] manifest = artifact.manifest();
        Optional<byte[]> chunks = artifact.chunks();
        if (compute) {
            try (FileChannel layer = store.openImage(artifact.layer())) {
                ChunkIndex index = ChunkIndex.compute(layer, artifact.layerSize(), progress::advance);
                chunks = Optional.of(index.bytes());
                manifest = index.addTo(manifest);
            }
        }
        sendBlob(client, destination, Digest.of(ResumableBody.sha256(artifact.config())), bytesSource(artifact.config()),
                mountFrom, display);
        sendBlob(client, destination, artifact.layer(), fileSource(artifact), mountFrom, display);
        if (chunks.isPresent()) {
            sendBlob(client, destination, Digest.of(ResumableBody.sha256(chunks.get())), bytesSource(chunks.get()),
                    mountFrom, display);
        }
        return client.putManifest(destination.repository(), destination.manifestReference(), manifest,
                MediaTypes.OCI_MANIFEST, display);
    }

    private Digest pushContainerDisk(RegistryClient client, ImageInfo image, RegistryReference destination)
            throws IOException {
        String display = destination.toString();
        Upload scratch = store.beginUpload(); // in the store's staging area: sized like the image, cleaned by gc
        try {
            progress.begin("push", image.size() * 2);
            Layer layer = writeLayer(image, scratch);
            byte[] config = containerDiskConfig(layer.diffId());
            Digest configDigest = Digest.of(ResumableBody.sha256(config));
            byte[] manifest = containerDiskManifest(configDigest, config.length, layer);
            sendBlob(client, destination, configDigest, bytesSource(config), Optional.empty(), display);
            sendBlob(client, destination, layer.digest(), uploadSource(scratch, layer.size()), Optional.empty(), display);
            return client.putManifest(destination.repository(), destination.manifestReference(), manifest,
                    MediaTypes.OCI_MANIFEST, display);
        } finally {
            scratch.abandon();
        }
    }

    /** The gzip tar layer as written: its digest and size, and the digest of the tar inside (the diff ID). */
    private record Layer(Digest digest, long size, Digest diffId) {
    }

    private Layer writeLayer(ImageInfo image, Upload scratch) throws IOException {
        MessageDigest compressed = ResumableBody.newSha256();
        MessageDigest uncompressed = ResumableBody.newSha256();
        UploadStream sink = new UploadStream(scratch);
        GzipParameters gzip = new GzipParameters();
        gzip.setCompressionLevel(Deflater.BEST_SPEED); // disks are mostly zeros or already-compressed data
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(new DigestOutputStream(
                new GzipCompressorOutputStream(new DigestOutputStream(sink, compressed), gzip), uncompressed));
                FileChannel disk = store.openImage(image.digest())) {
            tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            TarArchiveEntry dir = entry(ContainerDiskLayers.DISK_DIR, 040555);
            tar.putArchiveEntry(dir);
            tar.closeArchiveEntry();
            TarArchiveEntry file = entry(DISK_FILE, 0100444);
            file.setSize(image.size());
            tar.putArchiveEntry(file);
            InputStream in = Channels.newInputStream(disk);
            byte[] buffer = new byte[1 << 20];
            int n;
            while ((n = in.read(buffer)) > 0) {
                tar.write(buffer, 0, n);
                progress.advance(n);
            }
            tar.closeArchiveEntry();
            tar.finish();
        }
        return new Layer(Digest.of(compressed.digest()), sink.position(), Digest.of(uncompressed.digest()));
    }

    private static TarArchiveEntry entry(String name, int mode) {
        TarArchiveEntry entry = new TarArchiveEntry(name);
        entry.setMode(mode);
        entry.setIds(QEMU_ID, QEMU_ID);
        entry.setNames("qemu", "qemu");
        entry.setModTime(new Date(0)); // the same image always makes the same layer digest
        return entry;
    }

    private static byte[] containerDiskConfig(Digest diffId) throws IOException {
        ObjectNode config = JSON.createObjectNode();
        config.put("architecture", Puller.Choice.hostArch());
        config.put("os", "linux");
        config.putObject("config");
        ObjectNode rootfs = config.putObject("rootfs");
        rootfs.put("type", "layers");
        rootfs.putArray("diff_ids").add(diffId.toString());
        return JSON.writeValueAsBytes(config);
    }

    private static byte[] containerDiskManifest(Digest config, long configSize, Layer layer) throws IOException {
        ObjectNode manifest = JSON.createObjectNode();
        manifest.put("schemaVersion", 2);
        manifest.put("mediaType", MediaTypes.OCI_MANIFEST);
        ObjectNode c = manifest.putObject("config");
        c.put("mediaType", MediaTypes.OCI_CONFIG);
        c.put("digest", config.toString());
        c.put("size", configSize);
        ObjectNode l = manifest.putArray("layers").addObject();
        l.put("mediaType", MediaTypes.OCI_LAYER_GZIP);
        l.put("digest", layer.digest().toString());
        l.put("size", layer.size());
        return JSON.writeValueAsBytes(manifest);
    }

    /** HEAD first; then a cross-repository mount when another repository here has it; then an upload. */
    private void sendBlob(RegistryClient client, RegistryReference destination, Digest digest,
            RegistryClient.BlobSource source, Optional<String> mountFrom, String display) throws IOException {
        String repository = destination.repository();
        if (client.hasBlob(repository, digest, display)
                || mountFrom.isPresent() && client.mountBlob(repository, digest, mountFrom.get(), display)) {
            progress.advance(source.size());
            return;
        }
        client.uploadBlob(repository, digest, source, progress::advance, display);
    }

    /** A repository of the destination registry this image was pulled from, as its default names record. */
    private static Optional<String> sourceRepository(ImageInfo image, RegistryReference destination) {
        String prefix = destination.registry() + "/";
        for (ImageName name : image.names()) {
            if (name.repository().startsWith(prefix)) {
                String repository = name.repository().substring(prefix.length());
                if (!repository.equals(destination.repository())) {
                    return Optional.of(repository);
                }
            }
        }
        return Optional.empty();
    }

    private static RegistryClient.BlobSource bytesSource(byte[] bytes) {
        return new RegistryClient.BlobSource() {
            @Override
            public InputStream open(long offset) {
                return new java.io.ByteArrayInputStream(bytes, (int) offset, bytes.length - (int) offset);
            }

            @Override
            public long size() {
                return bytes.length;
            }
        };
    }

    private RegistryClient.BlobSource fileSource(ImageStore.Artifact artifact) {
        return new RegistryClient.BlobSource() {
            @Override
            public InputStream open(long offset) throws IOException {
                FileChannel channel = store.openImage(artifact.layer());
                channel.position(offset);
                return Channels.newInputStream(channel);
            }

            @Override
            public long size() {
                return artifact.layerSize();
            }
        };
    }

    private static RegistryClient.BlobSource uploadSource(Upload upload, long size) {
        return new RegistryClient.BlobSource() {
            @Override
            public InputStream open(long offset) {
                return new UploadInput(upload, offset);
            }

            @Override
            public long size() {
                return size;
            }
        };
    }

    /** Appends to an upload. */
    private static final class UploadStream extends OutputStream {
        private final Upload upload;
        private long position;

        UploadStream(Upload upload) {
            this.upload = upload;
        }

        long position() {
            return position;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] bytes, int offset, int length) throws IOException {
            upload.write(ByteBuffer.wrap(bytes, offset, length), position);
            position += length;
        }
    }

    /** Reads an upload back from an offset. */
    private static final class UploadInput extends InputStream {
        private final Upload upload;
        private long position;

        UploadInput(Upload upload, long position) {
            this.upload = upload;
            this.position = position;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] bytes, int offset, int length) throws IOException {
            int n = upload.read(ByteBuffer.wrap(bytes, offset, length), position);
            if (n > 0) {
                position += n;
            }
            return n;
        }
    }
}
