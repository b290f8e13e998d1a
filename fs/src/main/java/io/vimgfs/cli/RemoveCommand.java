package io.vimgfs.cli;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import java.io.PrintWriter;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs rm NAME…}: untag names; a digest removes the image and all its names. */
@Command(name = "rm", mixinStandardHelpOptions = true,
        description = {"Remove names. An image goes with its last name, unless another image uses it as its backing.",
            "A digest (sha256:<hex> or a unique prefix) removes the image and all its names."})
final class RemoveCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Parameters(arity = "1..*", paramLabel = "NAME")
    List<String> references;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        try (ImageStore store = main.openStore()) {
            for (String reference : references) {
                Optional<ImageName> name = store.nameIn(reference);
                if (name.isPresent()) {
                    store.untag(name.get());
                    out.printf("untagged %s%n", name.get());
                    continue;
                }
                Digest digest = store.resolve(reference).digest();
                boolean gone = store.removeImage(digest);
                out.printf(gone ? "removed %s%n" : "removed the names of %s; it stays as the backing of another image%n", digest);
            }
            return 0;
        }
    }
}
