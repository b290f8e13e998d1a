package io.vimgfs.store;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Which blobs of one store some process has open, found as {@code fuser} does: by reading every
 * {@code /proc/PID/fd/*} link. Since VMs read blob files directly, this is the only way to know
 * an image is in use. Processes come and go during a scan and some hide their descriptors
 * (another user's, when not root): those are skipped, never an error.
 */
final class OpenImages {
    private static final String DELETED = " (deleted)";
    private final Path proc;
    private final List<String> prefixes;

    /**
     * @param directories directories whose entries are images by hex digest, as the kernel prints
     *                    their paths: the store's {@code blobs/sha256} (resolved to its real path),
     *                    and any a mount shows the same images in
     */
    OpenImages(Path proc, List<Path> directories) {
        this.proc = proc;
        this.prefixes = directories.stream().map(d -> d + "/").toList();
    }

    OpenImages(Path proc, Path blobDir) {
        this(proc, List.of(blobDir));
    }

    static OpenImages of(BlobFiles files) throws IOException {
        return of(files, List.of());
    }

    /** The store's blobs and, by their absolute paths, the other directories that show them. */
    static OpenImages of(BlobFiles files, Collection<Path> alsoIn) throws IOException {
        List<Path> directories = new ArrayList<>();
        directories.add(files.blobDir().toRealPath());
        alsoIn.forEach(d -> directories.add(d.toAbsolutePath().normalize()));
        return new OpenImages(Path.of("/proc"), directories);
    }

    /** Every blob with an open descriptor, and the processes holding it; deleted blobs are gone already. */
    Map<Digest, List<ImageHolder>> scan() throws IOException {
        return scan(digest -> true);
    }

    /** As {@link #scan()}, for the blobs {@code counted} accepts. */
    Map<Digest, List<ImageHolder>> scan(Predicate<Digest> counted) throws IOException {
        Map<Digest, Set<Long>> pids = new HashMap<>();
        Map<Long, ImageHolder> byPid = new HashMap<>();
        for (ImageUse use : uses()) {
            if (!use.deleted() && counted.test(use.digest())) {
                pids.computeIfAbsent(use.digest(), d -> new LinkedHashSet<>()).add(use.pid());
                byPid.putIfAbsent(use.pid(), new ImageHolder(use.pid(), use.command()));
            }
        }
        Map<Digest, List<ImageHolder>> holders = new HashMap<>();
        pids.forEach((digest, set) -> holders.put(digest, set.stream().map(byPid::get).toList()));
        return holders;
    }

    /** Every (image, process) pair once, with the path the process opened, in /proc order. */
    List<ImageUse> uses() throws IOException {
        List<ImageUse> uses = new ArrayList<>();
        try (DirectoryStream<Path> processes = Files.newDirectoryStream(proc, OpenImages::isPid)) {
            for (Path process : processes) {
                uses.addAll(usesOf(process, Long.parseLong(process.getFileName().toString())));
            }
        }
        return uses;
    }

    private List<ImageUse> usesOf(Path process, long pid) {
        List<ImageUse> open = new ArrayList<>();
        Set<Digest> seen = new HashSet<>();
        String command = null;
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(process.resolve("fd"))) {
            for (Path fd : fds) {
                String target;
                try {
                    target = Files.readSymbolicLink(fd).toString();
                } catch (IOException | UnsupportedOperationException e) {
                    continue; // closed since the listing
                }
                for (String prefix : prefixes) {
                    if (!target.startsWith(prefix)) {
                        continue;
                    }
                    String name = target.substring(prefix.length());
                    // A deleted blob shows as "<hex> (deleted)"
                    boolean deleted = name.endsWith(DELETED);
                    String hex = deleted ? name.substring(0, name.length() - DELETED.length()) : name;
                    if (Digest.isHex64(hex) && seen.add(new Digest(hex))) {
                        command = command != null ? command : commandLine(process);
                        open.add(new ImageUse(new Digest(hex), pid, command, target, deleted));
                    }
                }
            }
        } catch (IOException | DirectoryIteratorException e) {
            // the process ended, or its descriptors are not ours to see
        }
        return open;
    }

    /** The command line with its NUL separators as spaces, or the short name when it has none (a kernel thread, a zombie). */
    static String commandLine(Path process) {
        try {
            byte[] raw = Files.readAllBytes(process.resolve("cmdline"));
            String line = new String(raw, StandardCharsets.UTF_8).replace('\0', ' ').strip();
            if (!line.isEmpty()) {
                return line;
            }
            return "[" + Files.readString(process.resolve("comm")).strip() + "]";
        } catch (IOException e) {
            return "?";
        }
    }

    private static boolean isPid(Path entry) {
        String name = entry.getFileName().toString();
        return !name.isEmpty() && name.chars().allMatch(c -> c >= '0' && c <= '9');
    }
}
