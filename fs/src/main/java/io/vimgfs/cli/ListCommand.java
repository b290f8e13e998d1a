package io.vimgfs.cli;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs ls}: one line per name, with the image's digest, format and sizes. */
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

    @Override
    public Integer call() throws Exception {
        try (ImageStore store = main.openStore()) {
            PrintWriter out = spec.commandLine().getOut();
            List<String[]> rows = new ArrayList<>();
            rows.add(new String[] {"NAME", "DIGEST", "FORMAT", "VIRTUAL SIZE", "SIZE", "BACKING"});
            for (ImageInfo image : store.list().stream().sorted(ImageStore.byFirstName()).toList()) {
                List<String> names = image.names().isEmpty() ? List.of("<none>")
                        : image.names().stream().map(ImageName::toString).toList();
                for (String name : names) {
                    if (quiet) {
                        out.println(name);
                        continue;
                    }
                    rows.add(new String[] {name, image.digest().hex(), image.format().id(), size(image.virtualSize()),
                        size(image.size()), image.backing().map(d -> d.shortHex()).orElse("-")});
                }
            }
            if (!quiet) {
                Table.print(out, rows);
            }
            out.flush();
            return 0;
        }
    }

    private String size(long value) {
        return bytes ? Long.toString(value) : ByteSizes.format(value);
    }
}
