package io.vimgfs.fs;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** Reads {@code /proc/self/mountinfo}: is a directory a mountpoint, and of what. */
public final class Mounts {
    private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

    private Mounts() {
    }

    /** The filesystem type mounted at the path ({@code fuse.vimgfs}, …), or null. */
    public static String typeAt(Path mountpoint) throws IOException {
        String wanted = mountpoint.toAbsolutePath().normalize().toString();
        String type = null;
        for (String line : Files.readAllLines(MOUNTINFO)) {
            String[] fields = line.split(" ");
            int separator = List.of(fields).indexOf("-");
            if (fields.length > 4 && separator > 0 && separator + 1 < fields.length && unescape(fields[4]).equals(wanted)) {
                type = fields[separator + 1]; // the last mount on a path is the visible one
            }
        }
        return type;
    }

    /** The {@code major:minor} of the filesystem mounted at the path, from mountinfo (no stat of the mount). */
    static String deviceAt(Path mountpoint) throws IOException {
        String wanted = mountpoint.toAbsolutePath().normalize().toString();
        String device = null;
        for (String line : Files.readAllLines(MOUNTINFO)) {
            String[] fields = line.split(" ");
            if (fields.length > 4 && unescape(fields[4]).equals(wanted)) {
                device = fields[2];
            }
        }
        return device;
    }

    /** The source of the mount at the path (for vimgfs, its store directory), or null; reads mountinfo only. */
    public static String sourceAt(Path mountpoint) throws IOException {
        String wanted = mountpoint.toAbsolutePath().normalize().toString();
        String source = null;
        for (String line : Files.readAllLines(MOUNTINFO)) {
            String[] fields = line.split(" ");
            int separator = List.of(fields).indexOf("-");
            if (fields.length > 4 && separator > 0 && separator + 2 < fields.length && unescape(fields[4]).equals(wanted)) {
                source = unescape(fields[separator + 2]);
            }
        }
        return source;
    }

    public static boolean isVimgfsAt(Path mountpoint) throws IOException {
        return "fuse.vimgfs".equals(typeAt(mountpoint));
    }

    /** mountinfo escapes space, tab, newline and backslash as octal. */
    private static String unescape(String field) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < field.length(); i++) {
            char c = field.charAt(i);
            if (c == '\\' && i + 3 < field.length() && field.substring(i + 1, i + 4).matches("[0-7]{3}")) {
                out.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    static boolean isEmptyDirectory(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }
}
