package io.vimgfs.cli;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.KeepReason;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs ls [--all]}: one line per name, with the image's digest, format and sizes; --all adds the nameless and why they stay. */
@Command(name = "ls", mixinStandardHelpOptions = true,
        description = "List the images: name, digest (sha256 of the bytes), format, virtual size, size.")
final class ListCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Option(names = "--bytes", description = "Print sizes in bytes.")
    boolean bytes;

    @Option(names = {"-q", "--quiet"}, description = "Print names only.")
    boolean quiet;

    @Option(names = {"-a", "--all"}, description = "Also the nameless images that holds, overlays or open files keep, and why.")
    boolean all;

    /** Images by their first name, nameless ones last. */
    private static final Comparator<ImageInfo> BY_FIRST_NAME = Comparator.comparing((ImageInfo i) -> i.names().isEmpty())
            .thenComparing(i -> i.names().isEmpty() ? "" : i.names().get(0).toString())
            .thenComparing(ImageInfo::digest);

    @Override
    public Integer call() throws Exception {
        try (ImageStore store = main.openStore()) {
            PrintWriter out = spec.commandLine().getOut();
            List<String[]> rows = new ArrayList<>();
            rows.add(all ? new String[] {"NAME", "DIGEST", "FORMAT", "VIRTUAL SIZE", "SIZE", "BACKING", "KEPT BY"}
                    : new String[] {"NAME", "DIGEST", "FORMAT", "VIRTUAL SIZE", "SIZE", "BACKING"});
            Map<Digest, List<KeepReason>> reasons = all ? store.keepReasons() : Map.of();
            for (ImageInfo image : store.list().stream().sorted(BY_FIRST_NAME).toList()) {
                if (image.names().isEmpty() && !all) {
                    continue; // kept without names (a hold, an overlay, an open file): ls --all shows it
                }
                List<String> names = image.names().isEmpty() ? List.of("<none>")
                        : image.names().stream().map(ImageName::toString).toList();
                for (String name : names) {
                    if (quiet) {
                        out.println(name);
                        continue;
                    }
                    String[] row = {name, image.digest().hex(), image.format().id(), size(image.virtualSize()),
                        size(image.size()), image.backing().map(d -> d.shortHex()).orElse("-")};
                    rows.add(all ? append(row, keptBy(image, reasons)) : row);
                }
            }
            if (!quiet) {
                Table.print(out, rows);
            }
            out.flush();
            return 0;
        }
    }

    private static String keptBy(ImageInfo image, Map<Digest, List<KeepReason>> reasons) {
        List<String> outside = reasons.getOrDefault(image.digest(), List.of()).stream()
                .filter(r -> !(r instanceof KeepReason.Named)).map(KeepReason::describe).toList();
        if (outside.isEmpty()) {
            return image.names().isEmpty() ? "nothing (the next gc removes it)" : "-";
        }
        return String.join("; ", outside);
    }

    private static String[] append(String[] row, String cell) {
        String[] longer = java.util.Arrays.copyOf(row, row.length + 1);
        longer[row.length] = cell;
        return longer;
    }

    private String size(long value) {
        return bytes ? Long.toString(value) : ByteSizes.format(value);
    }
}
