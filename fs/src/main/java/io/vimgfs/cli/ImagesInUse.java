package io.vimgfs.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Which processes have which of the store's images open, read from {@code /proc/*}{@code /fd} as
 * {@code fuser} does (root sees every process): a descriptor on {@code STORE/blobs/sha256/HEX}, or
 * on {@code MOUNTPOINT/by-digest/sha256/HEX} for images served through the daemon
 * ({@code -o data=fuse}). Only links are read, never the files, so a hung mount cannot stall it.
 *
 * <p>The store's own in-use scan (for GC) is being written alongside; this one is status's until
 * the two are merged.
 */
final class ImagesInUse {
    private static final Pattern PID = Pattern.compile("[0-9]+");

    /** One process holding one image open. */
    record User(String hex, long pid, String command, String path) {
    }

    private ImagesInUse() {
    }

    /** Every (image, process) pair, once each; the daemons in {@code skip} (they serve, not use) are left out. */
    static List<User> scan(Path storeRoot, Collection<Path> mountpoints, Set<Long> skip) {
        List<Pattern> wanted = new ArrayList<>();
        wanted.add(prefixed(storeRoot.resolve("blobs/sha256")));
        for (Path mountpoint : mountpoints) {
            wanted.add(prefixed(mountpoint.resolve("by-digest/sha256")));
        }
        long self = ProcessHandle.current().pid();
        List<User> users = new ArrayList<>();
        try (Stream<Path> processes = Files.list(Path.of("/proc"))) {
            for (Path process : processes.toList()) {
                String name = process.getFileName().toString();
                if (!PID.matcher(name).matches() || Long.parseLong(name) == self || skip.contains(Long.parseLong(name))) {
                    continue;
                }
                users.addAll(usersIn(process, Long.parseLong(name), wanted));
            }
        } catch (IOException e) {
            return users;
        }
        return users;
    }

    private static Pattern prefixed(Path dir) {
        return Pattern.compile(Pattern.quote(dir.toAbsolutePath().normalize() + "/") + "([0-9a-f]{64})( \\(deleted\\))?");
    }

    private static List<User> usersIn(Path process, long pid, List<Pattern> wanted) {
        List<User> users = new ArrayList<>();
        try (Stream<Path> fds = Files.list(process.resolve("fd"))) {
            for (Path fd : fds.toList()) {
                String target = readLink(fd);
                for (Pattern pattern : wanted) {
                    Matcher matcher = pattern.matcher(target);
                    if (matcher.matches() && users.stream().noneMatch(u -> u.hex().equals(matcher.group(1)))) {
                        users.add(new User(matcher.group(1), pid, commandLine(process), target));
                    }
                }
            }
        } catch (IOException e) {
            return users; // gone, or not ours to read
        }
        return users;
    }

    private static String readLink(Path fd) {
        try {
            return Files.readSymbolicLink(fd).toString();
        } catch (IOException e) {
            return "";
        }
    }

    static String commandLine(Path process) {
        try {
            byte[] bytes = Files.readAllBytes(process.resolve("cmdline"));
            String line = new String(bytes, StandardCharsets.UTF_8).replace('\0', ' ').strip();
            return line.isEmpty() ? "[" + Files.readString(process.resolve("comm")).strip() + "]" : line;
        } catch (IOException e) {
            return "?";
        }
    }
}
