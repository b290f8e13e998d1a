package io.vimgfs.store.registry;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/** A raw image stored in a source store as vimgfs stores it, and what a registry serves of it. */
record TestImage(byte[] layer, Digest digest, ImageStore.Artifact artifact, int rangeBytes) {
    static final String REPOSITORY = "test/disk";

    /** {@code size} seeded random bytes with a run of zeros (a hole when pulled) from 2 to 4 MiB. */
    static TestImage make(Path sourceStore, int size, int rangeBytes) throws IOException {
        byte[] layer = new byte[size];
        new Random(size).nextBytes(layer);
        Arrays.fill(layer, 2 << 20, Math.min(size, 4 << 20), (byte) 0);
        Path file = Files.write(sourceStore.resolveSibling("source.raw"), layer);
        try (ImageStore store = ImageStore.open(sourceStore)) {
            Digest digest = store.importFile(file, Reference.parse("disk:1"), n -> { }).digest();
            return new TestImage(layer, digest, store.artifact(digest), rangeBytes);
        }
    }

    int ranges() {
        return (layer.length + rangeBytes - 1) / rangeBytes;
    }

    /** Serves the image as {@code test/disk:1}. */
    void serveFrom(FakeRegistry registry) {
        registry.manifest(REPOSITORY, "1", artifact.manifest(), MediaTypes.OCI_MANIFEST);
        registry.blob(Digest.of(ResumableBody.sha256(artifact.config())).toString(), artifact.config());
        registry.blob(digest.toString(), layer);
    }
}
