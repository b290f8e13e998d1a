package io.vimgfs.store.registry;

import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Upload;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * The files under {@code disk/} of a KubeVirt containerDisk, as its layers (tar, gzip or zstd)
 * leave them when applied in order: each such file is streamed into its own upload, and a later
 * layer's file or whiteout ({@code .wh.NAME}, {@code .wh..wh..opq}) replaces or removes it.
 * Everything else in the layers is only counted, for the message when there is no disk.
 */
final class ContainerDiskLayers implements AutoCloseable {
    static final String DISK_DIR = "disk/";
    private static final String WHITEOUT = ".wh.";
    private static final String OPAQUE = ".wh..wh..opq";

    private final ImageStore store;
    private final String display;
    private final Map<String, Upload> disks = new LinkedHashMap<>();
    private long otherFiles;

    ContainerDiskLayers(ImageStore store, String display) {
        this.store = store;
        this.display = display;
    }

    /** Applies one layer, read from its (already decompressed) tar stream. */
    void apply(InputStream tarStream) throws IOException {
        TarArchiveInputStream tar = new TarArchiveInputStream(tarStream);
        TarArchiveEntry entry;
        while ((entry = tar.getNextEntry()) != null) {
            String name = normalise(entry.getName());
            int slash = name.lastIndexOf('/');
            String base = name.substring(slash + 1);
            String parent = slash < 0 ? "" : name.substring(0, slash + 1);
            if (base.equals(OPAQUE)) {
                removeUnder(parent);
                continue;
            }
            if (base.startsWith(WHITEOUT)) {
                String gone = parent + base.substring(WHITEOUT.length());
                drop(gone);
                removeUnder(gone + "/");
                continue;
            }
            if (!name.startsWith(DISK_DIR)) {
                otherFiles += entry.isDirectory() ? 0 : 1;
                continue;
            }
            if (entry.isDirectory()) {
                continue;
            }
            if (entry.isSymbolicLink() || entry.isLink()) {
                throw new RegistryException(RegistryException.Kind.NO_DISK, display + ": " + name + " is a link; a "
                        + "containerDisk holds one regular file under disk/");
            }
            if (!entry.isFile()) {
                continue;
            }
            Upload upload = store.beginUpload();
            drop(name);
            disks.put(name, upload);
            upload.copyFrom(tar, n -> { });
        }
    }

    /** Whether no file under {@code disk/} is left: an ordinary container image. */
    boolean isEmpty() {
        return disks.isEmpty();
    }

    /** The one disk file, or a refusal that says what the image holds instead. */
    Upload theDisk() throws RegistryException {
        if (disks.isEmpty()) {
            throw new RegistryException(RegistryException.Kind.NO_DISK, display + ": no disk in this image: it is an "
                    + "ordinary container image (" + otherFiles + " files, none under disk/); vimgfs pulls vimgfs "
                    + "images, KubeVirt containerDisks and podman machine-os disks");
        }
        if (disks.size() > 1) {
            throw new RegistryException(RegistryException.Kind.NO_DISK, display + ": more than one file under disk/ ("
                    + String.join(", ", disks.keySet()) + "); a containerDisk holds exactly one");
        }
        return disks.values().iterator().next();
    }

    private static String normalise(String name) {
        String n = name;
        while (n.startsWith("./") || n.startsWith("/")) {
            n = n.substring(n.startsWith("./") ? 2 : 1);
        }
        return n;
    }

    private void drop(String name) throws IOException {
        Upload old = disks.remove(name);
        if (old != null) {
            old.abandon();
        }
    }

    private void removeUnder(String prefix) throws IOException {
        List<Upload> gone = new ArrayList<>();
        for (Iterator<Map.Entry<String, Upload>> it = disks.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, Upload> e = it.next();
            if (e.getKey().startsWith(prefix)) {
                gone.add(e.getValue());
                it.remove();
            }
        }
        for (Upload upload : gone) {
            upload.abandon();
        }
    }

    /** Abandons every upload still held (place consumes the one it places; abandoning it again is harmless). */
    @Override
    public void close() throws IOException {
        for (Upload upload : disks.values()) {
            upload.abandon();
        }
        disks.clear();
    }
}
