package io.vimgfs.cli;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
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

    @Parameters(index = "0", paramLabel = "FILE", description = "The image file (qcow2, raw, vmdk, vhdx, vdi, iso).")
    Path file;

    @Parameters(index = "1", paramLabel = "NAME", description = "The name to give it, e.g. cirros:0.6.2.")
    String name;

    @Override
    public Integer call() throws Exception {
        Reference reference = Reference.parse(name);
        if (!Files.isRegularFile(file)) {
            throw new java.nio.file.NoSuchFileException(file.toString(), null, "not a regular file");
        }
        try (ImageStore store = main.openStore(); Progress progress = Progress.start("import", Files.size(file))) {
            ImageInfo image = store.importFile(file, reference, progress);
            spec.commandLine().getOut().printf("%s %s (%s, virtual size %s, %s)%n", reference.name(), image.digest(),
                    image.format(), ByteSizes.format(image.virtualSize()), ByteSizes.format(image.size()));
            return 0;
        }
    }
}
