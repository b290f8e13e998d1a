package io.vimgfs.nativetest;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code ls -lR} of a mount, parsed: every entry's path (relative to the mount) and its line's fields. */
final class Listing {
    /** One line of {@code ls -l --time-style=+%s}. */
    record Entry(String mode, int links, long size, long mtime, String target) {
        boolean isLink() {
            return mode.startsWith("l");
        }

        boolean isDirectory() {
            return mode.startsWith("d");
        }
    }

    private Listing() {
    }

    static Map<String, Entry> lsLR(MountedStore mounted) {
        String root = mounted.mountpoint.toString();
        String out = Shell.run("ls", "-lR", "--time-style=+%s", root).ok().out();
        Map<String, Entry> entries = new LinkedHashMap<>();
        String dir = "";
        for (String line : out.split("\n")) {
            if (line.isBlank() || line.startsWith("total ")) {
                continue;
            }
            if (line.endsWith(":") && line.startsWith(root)) {
                dir = line.substring(root.length(), line.length() - 1).replaceFirst("^/", "");
                continue;
            }
            String[] f = line.split(" +", 7);
            String name = f[6];
            String target = null;
            int arrow = name.indexOf(" -> ");
            if (f[0].startsWith("l") && arrow >= 0) {
                target = name.substring(arrow + 4);
                name = name.substring(0, arrow);
            }
            entries.put(dir.isEmpty() ? name : dir + "/" + name,
                    new Entry(f[0], Integer.parseInt(f[1]), Long.parseLong(f[4]), Long.parseLong(f[5]), target));
        }
        return entries;
    }
}
