package io.vimgfs.store.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vimgfs.store.ChunkIndex;
import io.vimgfs.store.Digest;
import io.vimgfs.store.DigestMismatchException;
import io.vimgfs.store.ImageFormat;
import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.LazyPulls;
import io.vimgfs.store.StoreDamagedException;
import io.vimgfs.store.format.ProbeResult;
import java.io.IOException;

/**
 * What a lazy pull's manifest and config say of its disk, and the checks a {@link LazyDisk} makes
 * against them before it serves a byte: the chunk index is the one the manifest names, the disk
 * is no overlay, and its first chunks probe as the format and virtual size the manifest gives,
 * with no backing file (QEMU would open one).
 */
public final class LazyManifest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private LazyManifest() {
    }

    /** The format a lazy pull's manifest gives its disk layer: what QEMU is told to open it as. */
    public static ImageFormat formatOf(LazyPulls.Pull pull) throws StoreDamagedException {
        try {
            for (JsonNode layer : JSON.readTree(pull.manifest()).path("layers")) {
                if (ImageFormat.isDiskMediaType(layer.path("mediaType").asText())) {
                    return ImageFormat.ofMediaType(layer.path("mediaType").asText());
                }
            }
        } catch (IOException | IllegalArgumentException e) {
            throw new StoreDamagedException("the lazy pull of " + pull.layer() + " has a bad manifest: " + e.getMessage(), e);
        }
        throw new StoreDamagedException("the lazy pull of " + pull.layer() + " has no disk layer");
    }

    /** Before anything is fetched: the index given ({@code named} is its digest) is the manifest's, and the disk is no overlay. */
    static void checkBeforeFetching(LazyPulls.Pull pull, Digest named, String display) throws IOException {
        Digest inManifest = chunkDigest(pull);
        if (!named.equals(inManifest)) {
            throw new DigestMismatchException(inManifest, named);
        }
        JsonNode config = JSON.readTree(pull.config());
        if (!config.path("backing").asText("").isEmpty()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.FORBIDDEN_BACKING, display + " is an overlay"
                    + " (backing " + config.path("backing").asText() + "): pull it, and its base, without --lazy");
        }
    }

    /** After the first chunks: they probe as the manifest's format and virtual size, with no backing file. */
    static void checkProbe(LazyPulls.Pull pull, ProbeResult probe) throws IOException {
        long virtualSize = JSON.readTree(pull.config()).path("virtualSize").asLong();
        ImageFormat format = formatOf(pull);
        if (probe.format() != format || probe.virtualSize() != virtualSize) {
            throw new ImageRejectedException(ImageRejectedException.Reason.CORRUPT, "the manifest says " + format
                    + " of virtual size " + virtualSize + ", but the disk is " + probe.format() + " of virtual size "
                    + probe.virtualSize());
        }
        if (probe.backingFile().isPresent()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.FORBIDDEN_BACKING, "the disk names backing"
                    + " file '" + probe.backingFile().get() + "': pull it without --lazy");
        }
    }

    private static Digest chunkDigest(LazyPulls.Pull pull) throws IOException {
        for (JsonNode layer : JSON.readTree(pull.manifest()).path("layers")) {
            if (ChunkIndex.MEDIA_TYPE.equals(layer.path("mediaType").asText())) {
                try {
                    return Digest.parse(layer.path("digest").asText());
                } catch (InvalidNameException e) {
                    throw new StoreDamagedException("the manifest's chunk index digest: " + e.getMessage(), e);
                }
            }
        }
        throw new StoreDamagedException("the manifest of " + pull.layer() + " has no chunk index");
    }
}
