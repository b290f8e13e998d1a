package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.LinkOption;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The {@code user.vimgfs.*} xattrs of an image's layer blob, so {@code getfattr} on a name that
 * links to the blob answers from the file itself. Written before the blob is made immutable:
 * an immutable file takes no new xattrs. {@code user.vimgfs.names} is not here: names change,
 * the blob never does.
 */
record BlobAttributes(Digest digest, ImageFormat format, long virtualSize, Optional<Digest> backing) {
    static BlobAttributes of(StoredImage image) {
        return new BlobAttributes(image.layer(), image.format(), image.virtualSize(), image.backing());
    }

    /** The attributes of every layer the catalog holds, by its digest. */
    static Map<Digest, BlobAttributes> ofLayers(Catalog catalog) {
        Map<Digest, BlobAttributes> layers = new HashMap<>();
        for (StoredImage image : catalog.images()) {
            layers.put(image.layer(), of(image));
        }
        return layers;
    }

    /** Name (without "user.") to value, in the order they are written. */
    Map<String, String> values() {
        Map<String, String> values = new LinkedHashMap<>();
        values.put("vimgfs.digest", digest.toString());
        values.put("vimgfs.format", format.id());
        values.put("vimgfs.virtual_size", Long.toString(virtualSize));
        backing.ifPresent(b -> values.put("vimgfs.backing", b.toString()));
        return values;
    }

    void writeTo(Path file) throws IOException {
        UserDefinedFileAttributeView view = view(file);
        for (Map.Entry<String, String> attribute : values().entrySet()) {
            view.write(attribute.getKey(), ByteBuffer.wrap(attribute.getValue().getBytes(StandardCharsets.UTF_8)));
        }
    }

    /** Whether every attribute is there; values never go stale, since they follow from the content. */
    boolean presentOn(Path file) throws IOException {
        return view(file).list().containsAll(values().keySet());
    }

    private static UserDefinedFileAttributeView view(Path file) throws IOException {
        UserDefinedFileAttributeView view = Files.getFileAttributeView(file, UserDefinedFileAttributeView.class,
                LinkOption.NOFOLLOW_LINKS);
        if (view == null) {
            throw new IOException("the store's filesystem has no user xattrs: " + file);
        }
        return view;
    }
}
