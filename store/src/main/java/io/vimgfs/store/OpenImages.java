package io.vimgfs.store;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which blobs of one store some process has open, found as {@code fuser} does: by reading every
 * {@code /proc/PID/fd/*} link. Since VMs read blob files directly, this is the only way to know
 * an image is in use. Processes come and go during a scan and some hide their descriptors
 * (another user's, when not root): those are skipped, never an error.
 */
final class OpenImages {
    private final Path proc;
    private final String blobPrefix;

    /** @param blobDir the store's {@code blobs/sha256}, resolved to its real path as the kernel prints it */
    OpenImages(Path proc, Path blobDir) {
        this.proc = proc;
        this.blobPrefix = blobDir + "/";
    }

    static OpenImages of(BlobFiles files) throws IOException {
        return new OpenImages(Path.of("/proc"), files.blobDir().toRealPath());
    }

    /** Every blob with an open descriptor, and the processes holding it. */
    Map<Digest, List<ImageHolder>> scan() throws IOException {
        Map<Digest, Set<Long>> pids = new HashMap<>();
        try (DirectoryStream<Path> processes = Files.newDirectoryStream(proc, OpenImages::isPid)) {
            for (Path process : processes) {
                long pid = Long.parseLong(process.getFileName().toString());
                for (Digest digest : blobsOpenBy(process)) {
                    pids.computeIfAbsent(digest, d -> new LinkedHashSet<>()).add(pid);
                }
            }
        }
        Map<Digest, List<ImageHolder>> holders = new HashMap<>();
        Map<Long, ImageHolder> byPid = new HashMap<>();
        pids.forEach((digest, set) -> {
            List<ImageHolder> list = new ArrayList<>();
            for (long pid : set) {
                list.add(byPid.computeIfAbsent(pid, p -> new ImageHolder(p, commandLine(proc.resolve(Long.toString(p))))));
            }
            holders.put(digest, List.copyOf(list));
        });
        return holders;
    }

    private Set<Digest> blobsOpenBy(Path process) {
        Set<Digest> open = new LinkedHashSet<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(process.resolve("fd"))) {
            for (Path fd : fds) {
                String target;
                try {
                    target = Files.readSymbolicLink(fd).toString();
                } catch (IOException | UnsupportedOperationException e) {
                    continue; // closed since the listing
                }
                if (target.startsWith(blobPrefix)) {
                    String name = target.substring(blobPrefix.length());
                    // A deleted blob shows as "<hex> (deleted)": gone already, nothing to keep.
                    if (Digest.isHex64(name)) {
                        open.add(new Digest(name));
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
