package io.vimgfs.store.registry;

/** The media types and annotations of OCI and Docker images that pull and push read or write. */
final class MediaTypes {
    static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    static final String DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
    static final String OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
    static final String VIMGFS_ARTIFACT = "application/vnd.vimgfs.image.v1";
    static final String TITLE = "org.opencontainers.image.title";
    /** The annotation podman machine-os artifacts put on each disk's manifest. */
    static final String DISK_TYPE = "disktype";

    private MediaTypes() {
    }

    static boolean isIndex(String mediaType) {
        return OCI_INDEX.equals(mediaType) || DOCKER_MANIFEST_LIST.equals(mediaType);
    }
}
