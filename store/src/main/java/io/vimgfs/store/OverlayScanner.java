package io.vimgfs.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Finds the stored images that qcow2 files under held directories use, anywhere in their backing
 * chains. Reads only each file's header and backing name, and remembers them by (inode, mtime,
 * size), so a second scan of 1,000 unchanged overlays costs 1,000 stats. A backing path names a
 * stored image when it is the store's blob ({@code STORE/blobs/sha256/<hex>}), an entry of a
 * mount of this store ({@link ImagePaths}), or any path ending in a mount's by-digest entry
 * (keeping too much is the safe mistake); any other backing file
 * is an overlay outside the store, and its own chain is followed. Paths under a mount of this
 * store are never touched: the mount may be this very process.
 */
final class OverlayScanner {
    private static final System.Logger LOG = System.getLogger(OverlayScanner.class.getName());
    private static final int QCOW2_MAGIC = 0x514649fb;
    private static final int MAX_BACKING_NAME = 1023;
    private static final int MAX_CHAIN = 64;

    /** What one file's header said, and the stat it was read at. */
    private record Header(Object inode, long modifiedNanos, long size, Optional<String> backing) {
    }

    private final Path blobDir;
    private final Map<Path, Header> headers = new ConcurrentHashMap<>();

    OverlayScanner(Path blobDir) {
        this.blobDir = blobDir;
    }

    /**
     * For each stored image some qcow2 under the directories uses, the files (under those
     * directories) whose chain reaches it. {@code names} maps a name as written in a path to its
     * digest; {@code mountRoots} are the live mountpoints of this store.
     */
    Map<Digest, List<Path>> scan(Collection<Path> directories, Collection<Path> mountRoots,
            Function<String, Optional<Digest>> names) throws IOException {
        Map<Digest, List<Path>> uses = new LinkedHashMap<>();
        Set<Path> seen = new HashSet<>();
        for (Path directory : directories) {
            if (!Files.isDirectory(directory)) {
                continue;
            }
            for (Path file : filesUnder(directory)) {
                seen.add(file);
                for (Digest digest : chainOf(file, mountRoots, names)) {
                    uses.computeIfAbsent(digest, d -> new ArrayList<>()).add(file);
                }
            }
        }
        headers.keySet().removeIf(p -> !seen.contains(p) && headers.size() > 4 * seen.size() + 1024);
        return uses;
    }

    private static List<Path> filesUnder(Path directory) throws IOException {
        List<Path> files = new ArrayList<>();
        Files.walkFileTree(directory, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                if (attrs.isRegularFile()) {
                    files.add(file);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) {
                return FileVisitResult.CONTINUE; // vanished or unreadable: it keeps nothing
            }
        });
        return files;
    }

    /** The stored images the file's chain reaches (the first stored one; the catalog keeps its own bases). */
    private List<Digest> chainOf(Path file, Collection<Path> mountRoots, Function<String, Optional<Digest>> names) {
        List<Digest> found = new ArrayList<>();
        Set<Path> visited = new HashSet<>();
        Path current = file;
        for (int depth = 0; depth < MAX_CHAIN && visited.add(current); depth++) {
            Optional<String> backing = backingOf(current);
            if (backing.isEmpty()) {
                break;
            }
            Path target = resolve(current, backing.get());
            Optional<Digest> stored = storedImage(target, mountRoots, names);
            if (stored.isPresent()) {
                found.add(stored.get());
                break;
            }
            if (underAny(target, mountRoots)) {
                break; // a path in the mount that names nothing stored: nothing to keep, and not ours to stat
            }
            current = target;
        }
        return found;
    }

    private static Path resolve(Path overlay, String backing) {
        Path path = Path.of(backing);
        Path parent = overlay.toAbsolutePath().getParent();
        return (path.isAbsolute() || parent == null ? path : parent.resolve(path)).normalize();
    }

    private Optional<Digest> storedImage(Path target, Collection<Path> mountRoots, Function<String, Optional<Digest>> names) {
        String text = target.toString();
        Optional<Digest> blob = hexUnder(text, blobDir.toString() + "/");
        if (blob.isPresent()) {
            return blob;
        }
        Optional<Digest> byDigest = ImagePaths.digestAtEnd(text);
        if (byDigest.isPresent()) {
            return byDigest;
        }
        for (Path root : mountRoots) {
            Optional<String> name = ImagePaths.nameUnder(root, text);
            if (name.isPresent()) {
                return names.apply(name.get());
            }
        }
        if (!underAny(target, mountRoots)) {
            try {
                // A link into the store (a by-digest/ link of a mount this store has no record of).
                return hexUnder(target.toRealPath().toString(), realBlobDir() + "/");
            } catch (IOException e) {
                return Optional.empty();
            }
        }
        return Optional.empty();
    }

    private String realBlobDir() {
        try {
            return blobDir.toRealPath().toString();
        } catch (IOException e) {
            return blobDir.toString();
        }
    }

    private static Optional<Digest> hexUnder(String text, String prefix) {
        if (text.startsWith(prefix) && Digest.isHex64(text.substring(prefix.length()))) {
            return Optional.of(new Digest(text.substring(prefix.length())));
        }
        return Optional.empty();
    }

    private static boolean underAny(Path target, Collection<Path> roots) {
        return roots.stream().anyMatch(root -> target.startsWith(root.toAbsolutePath().normalize()));
    }

    /** The backing file name in the file's qcow2 header; empty for anything else. Cached by stat. */
    private Optional<String> backingOf(Path file) {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException e) {
            return Optional.empty();
        }
        if (!attrs.isRegularFile()) {
            return Optional.empty();
        }
        long mtime = attrs.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS);
        Header cached = headers.get(file);
        if (cached != null && cached.inode().equals(attrs.fileKey()) && cached.modifiedNanos() == mtime
                && cached.size() == attrs.size()) {
            return cached.backing();
        }
        Optional<String> backing = readBacking(file);
        headers.put(file, new Header(attrs.fileKey(), mtime, attrs.size(), backing));
        return backing;
    }

    private static Optional<String> readBacking(Path file) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer header = ByteBuffer.allocate(20);
            if (channel.read(header, 0) < 20 || header.getInt(0) != QCOW2_MAGIC) {
                return Optional.empty();
            }
            long offset = header.getLong(8);
            int length = header.getInt(16);
            if (offset <= 0 || length <= 0 || length > MAX_BACKING_NAME) {
                return Optional.empty();
            }
            ByteBuffer name = ByteBuffer.allocate(length);
            while (name.hasRemaining() && channel.read(name, offset + name.position()) > 0) {
                // read the whole name
            }
            return Optional.of(new String(name.array(), 0, name.position(), StandardCharsets.UTF_8));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException | UncheckedIOException e) {
            LOG.log(System.Logger.Level.DEBUG, "cannot read " + file + ": " + e.getMessage());
            return Optional.empty();
        }
    }
}
