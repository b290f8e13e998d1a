package io.vimgfs.fs;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
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
            "entry_timeout=1", "attr_timeout=1", "negative_timeout=0",
            "atomic_o_trunc"); // O_TRUNC arrives with the open: a truncating open is an upload of its own (IncomingArea.open)

    private static final String THREADS = "threads=";
    private static final String READAHEAD = "read_ahead_kb=";
    private static final String DATA = "data=";
    private static final String GROUP = "group=";
    private static final String METRICS = "metrics=";
    private static final String PRUNE_AT = "prune_at=";
    private static final String PRUNE_TO = "prune_to=";
    private static final int DEFAULT_READAHEAD_KIB = 1024;
    private static final int DEFAULT_THREADS = 8;

    public MountRequest {
        for (String option : options) {
            if (option.startsWith(THREADS) && !option.substring(THREADS.length()).matches("[1-9][0-9]{0,2}")) {
                throw new IllegalArgumentException("-o " + option + ": threads is a number from 1 to 999");
            }
            if (option.startsWith(READAHEAD) && !option.substring(READAHEAD.length()).matches("[0-9]{1,6}")) {
                throw new IllegalArgumentException("-o " + option + ": read_ahead_kb is a number of KiB");
            }
            if (option.startsWith(DATA)) {
                DataMode.ofOption(option.substring(DATA.length()));
            }
            if (option.startsWith(METRICS)) {
                metricsAddressOf(option.substring(METRICS.length())); // refuse a bad address before mounting
            }
            if ((option.startsWith(PRUNE_AT) || option.startsWith(PRUNE_TO))
                    && !option.substring(option.indexOf('=') + 1).matches("[0-9]{1,2}%|100%")) {
                throw new IllegalArgumentException("-o " + option + ": a percentage of the filesystem in use (90%)");
            }
            if (option.startsWith(GROUP) && !option.substring(GROUP.length()).matches("[a-z_][a-z0-9_-]*\\$?|[0-9]+")) {
                throw new IllegalArgumentException("-o " + option + ": group is a group name (libvirt-qemu, kvm) or a gid");
            }
        }
        if (options.stream().anyMatch(o -> o.startsWith(GROUP)) && !options.contains("allow_other")) {
            throw new IllegalArgumentException("-o group=… needs allow_other: without it no other user can use the mount");
        }
        boolean at = options.stream().anyMatch(o -> o.startsWith(PRUNE_AT));
        if (at != options.stream().anyMatch(o -> o.startsWith(PRUNE_TO))) {
            throw new IllegalArgumentException("-o prune_at=… and prune_to=… go together (prune_at=90%,prune_to=80%)");
        }
        options = List.copyOf(options);
        if (at && pruneWatermarks().get().low() >= pruneWatermarks().get().high()) {
            throw new IllegalArgumentException("-o prune_to must be below prune_at: prune runs from the high mark down to the low");
        }
    }

    /** High and low marks of the filesystem's use, in percent. */
    public record Watermarks(int high, int low) {
    }

    /**
     * {@code -o prune_at=90%,prune_to=80%} (off by default): when the store's filesystem is
     * {@code high} percent used, the mount prunes least recently used images until {@code low}.
     */
    public Optional<Watermarks> pruneWatermarks() {
        return last(PRUNE_AT).flatMap(high -> last(PRUNE_TO).map(low -> new Watermarks(
                Integer.parseInt(high.replace("%", "")), Integer.parseInt(low.replace("%", "")))));
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
            if (!IGNORED.contains(option) && !option.startsWith("x-") && !option.equals("nonempty")
                    && !option.startsWith(THREADS) && !option.startsWith(READAHEAD)
                    && !option.startsWith(DATA) && !option.startsWith(GROUP) && !option.startsWith(METRICS)
                    && !option.startsWith(PRUNE_AT) && !option.startsWith(PRUNE_TO)) {
                all.add(option);
            }
        }
        return List.copyOf(all);
    }

    /** {@code -o threads=N}: how many requests the daemon serves at once (default 8). */
    int threads() {
        return options.stream().filter(o -> o.startsWith(THREADS)).reduce((a, b) -> b)
                .map(o -> Integer.parseInt(o.substring(THREADS.length()))).orElse(DEFAULT_THREADS);
    }

    /** {@code -o read_ahead_kb=N}: the kernel's readahead window for the mount (default 1024). */
    int readaheadKib() {
        return options.stream().filter(o -> o.startsWith(READAHEAD)).reduce((a, b) -> b)
                .map(o -> Integer.parseInt(o.substring(READAHEAD.length()))).orElse(DEFAULT_READAHEAD_KIB);
    }

    /** {@code -o data=link|fuse}: how image bytes reach readers (default: links to the store's blobs). */
    public DataMode dataMode() {
        return last(DATA).map(DataMode::ofOption).orElse(DataMode.LINK);
    }

    /** {@code -o group=NAME}: with allow_other, the group that may read the store's blobs. */
    public Optional<String> group() {
        return last(GROUP);
    }

    /**
     * {@code -o metrics=[HOST:]PORT}: where to serve Prometheus metrics (off by default). A bare
     * port listens on loopback only: the numbers name images and paths.
     */
    public Optional<InetSocketAddress> metricsAddress() {
        return last(METRICS).map(MountRequest::metricsAddressOf);
    }

    private static InetSocketAddress metricsAddressOf(String value) {
        int colon = value.lastIndexOf(':');
        String host = colon < 0 ? "127.0.0.1" : value.substring(0, colon).replaceAll("^\\[(.*)]$", "$1");
        String port = value.substring(colon + 1);
        if (!port.matches("[0-9]{1,5}") || Integer.parseInt(port) > 65535 || host.isEmpty()) {
            throw new IllegalArgumentException("-o metrics=" + value + ": give a port (9477) or HOST:PORT (127.0.0.1:9477)");
        }
        return InetSocketAddress.createUnresolved(host, Integer.parseInt(port));
    }

    public boolean allowOther() {
        return options.contains("allow_other");
    }

    private Optional<String> last(String prefix) {
        return options.stream().filter(o -> o.startsWith(prefix)).reduce((a, b) -> b).map(o -> o.substring(prefix.length()));
    }

    boolean allowNonEmpty() {
        return options.contains("nonempty");
    }
}
