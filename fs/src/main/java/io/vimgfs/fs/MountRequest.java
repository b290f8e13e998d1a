package io.vimgfs.fs;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What to mount where, and with which options. Options that mount(8) and fstab pass along but
 * mean nothing to FUSE ({@code rw}, {@code nofail}, {@code x-systemd.*}, …) are dropped here.
 */
public record MountRequest(Path store, Path mountpoint, List<String> options, boolean debug) {
    private static final Set<String> IGNORED = Set.of("rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec",
            "auto", "noauto", "user", "users", "nouser", "defaults", "nofail", "_netdev", "async", "sync",
            "atime", "noatime", "relatime", "default_permissions", "kernel_cache", "big_writes", "use_ino");
    /** Always on: see FUSE-NOTES. Timeouts are short because names can move (SPEC §2). */
    private static final List<String> BUILT_IN = List.of("default_permissions", "use_ino", "big_writes",
            "entry_timeout=1", "attr_timeout=1", "negative_timeout=0");

    public MountRequest {
        options = List.copyOf(options);
    }

    /** Parses {@code -o a,b,c} lists as given on the command line. */
    public static List<String> splitOptions(List<String> optionLists) {
        List<String> options = new ArrayList<>();
        for (String list : optionLists) {
            for (String option : list.split(",")) {
                if (!option.isBlank()) {
                    options.add(option.strip());
                }
            }
        }
        return options;
    }

    /** The option list libfuse gets. */
    List<String> fuseOptions() {
        Set<String> all = new LinkedHashSet<>();
        all.add("fsname=" + store);
        all.add("subtype=vimgfs");
        all.addAll(BUILT_IN);
        for (String option : options) {
            if (!IGNORED.contains(option) && !option.startsWith("x-") && !option.equals("nonempty")) {
                all.add(option);
            }
        }
        return List.copyOf(all);
    }

    boolean allowNonEmpty() {
        return options.contains("nonempty");
    }
}
