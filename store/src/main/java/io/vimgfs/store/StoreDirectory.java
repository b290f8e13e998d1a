package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.stream.Stream;

/**
 * A store's directory as the rest of vimgfs may see it, whether or not the store is open (status
 * reads a store whose lock another process holds): the files other parts keep in
 * {@code .vimgfs/}, the live mounts' records, the staging files in flight, and which processes
 * have its images open. With {@link BlobFiles} the only code that knows the directory's layout:
 * fs/ and cli/ ask here rather than building paths inside it.
 */
public final class StoreDirectory {
    /** A staging file: an upload, import or pull in flight (or one whose writer died, which gc removes). */
    public record StagingFile(Path file, long bytes, Instant modified) {
    }

    private final BlobFiles files;

    StoreDirectory(BlobFiles files) {
        this.files = files;
    }

    /** The directory at {@code root}, which may hold a store or not (yet). */
    public static StoreDirectory of(Path root) {
        return new StoreDirectory(new BlobFiles(root.toAbsolutePath().normalize()));
    }

    public Path root() {
        return files.root();
    }

    /** Whether the directory holds a store (its oci-layout file). */
    public boolean holdsStore() {
        return Files.exists(files.layoutFile());
    }

    /**
     * Where another part of vimgfs keeps a file or directory of its own inside the store
     * ({@code mount.log}, {@code activity}, {@code control}): under {@code .vimgfs/}, which
     * tools reading the OCI layout ignore.
     */
    public Path workFile(String name) {
        Path file = files.workDir().resolve(name).normalize();
        if (!file.getParent().equals(files.workDir())) {
            throw new IllegalArgumentException("not a name of a file in " + files.workDir() + ": " + name);
        }
        return file;
    }

    /** The lazy pulls asked for and not yet placed. */
    public LazyPulls lazyPulls() {
        return new LazyPulls(files.workDir(), point -> { });
    }

    public MountRecords mounts() {
        return new MountRecords(files.workDir().resolve("mounts"));
    }

    /** The staging files, by name. */
    public List<StagingFile> staging() throws IOException {
        Path dir = files.stagingDir();
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<StagingFile> staged = new ArrayList<>();
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path entry : entries.sorted().toList()) {
                try {
                    staged.add(new StagingFile(entry, Files.size(entry), Files.getLastModifiedTime(entry).toInstant()));
                } catch (java.nio.file.NoSuchFileException e) {
                    // placed or dropped while we listed: no longer in flight
                }
            }
        }
        return staged;
    }

    /**
     * Every process that has one of the store's images open, by its blob or by an entry of one of
     * {@code alsoIn} (the directories a mount serves the same images in, {@code -o data=fuse}).
     * Only links are read, never the files, so a hung mount cannot stall it.
     */
    public List<ImageUse> imagesInUse(Collection<Path> alsoIn) throws IOException {
        return OpenImages.of(files, alsoIn).uses();
    }
}
