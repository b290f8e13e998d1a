package io.vimgfs.cli;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs import FILE NAME}: hash, check and place a disk image under a name. */
@Command(name = "import", mixinStandardHelpOptions = true,
        description = {"Add a disk image file to the store under NAME.",
            "NAME is repo[:tag] (default tag: latest), optionally pinned: repo:tag@sha256:<hex>,",
            "in which case the import fails unless the file hashes to that digest."})
final class ImportCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "FILE", description = "The image file (qcow2, raw, vmdk, vhdx, vdi, iso).")
    Path file;

    @Parameters(index = "1", arity = "0..1", paramLabel = "NAME", description = "The name to give it, e.g. cirros:0.6.2.")
    String name;

    @Option(names = "--from-list", paramLabel = "LIST",
            description = "Import many files: LIST has one 'FILE NAME' per line (bases before their overlays); "
                    + "every 1000 files are committed at once.")
    Path list;

    @Override
    public Integer call() throws Exception {
        if ((list == null) == (file == null || name == null) || (list != null && file != null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "give FILE and NAME, or --from-list LIST");
        }
        List<ImageStore.ImportItem> items = list != null ? readList(list) : List.of(item(file, name));
        long total = 0;
        for (ImageStore.ImportItem item : items) {
            total += Files.size(item.file());
        }
        PrintWriter out = spec.commandLine().getOut();
        try (ImageStore store = main.openStore(); Progress progress = Progress.start("import", total)) {
            List<ImageInfo> images = store.importAll(items, progress);
            for (int i = 0; i < images.size(); i++) {
                ImageInfo image = images.get(i);
                out.printf("%s %s (%s, virtual size %s, %s)%n", items.get(i).reference().name(), image.digest(),
                        image.format(), ByteSizes.format(image.virtualSize()), ByteSizes.format(image.size()));
            }
            return 0;
        }
    }

    private static ImageStore.ImportItem item(Path file, String name) throws Exception {
        Reference reference = Reference.parse(name);
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "not a regular file");
        }
        return new ImageStore.ImportItem(file, reference);
    }

    private static List<ImageStore.ImportItem> readList(Path list) throws Exception {
        List<ImageStore.ImportItem> items = new ArrayList<>();
        int number = 0;
        for (String line : Files.readAllLines(list)) {
            number++;
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] fields = line.trim().split("\\s+");
            if (fields.length != 2) {
                throw new IllegalArgumentException(list + " line " + number + ": expected 'FILE NAME', got '" + line + "'");
            }
            items.add(item(Path.of(fields[0]), fields[1]));
        }
        return items;
    }
}
