package io.vimgfs.cli;

import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImageStore;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs tag NAME NEWNAME}: another name for an image; an existing NEWNAME moves. */
@Command(name = "tag", mixinStandardHelpOptions = true,
        description = "Give the image NAME (a name or a digest) the name NEWNAME; if NEWNAME exists it moves.")
final class TagCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "NAME")
    String source;

    @Parameters(index = "1", paramLabel = "NEWNAME")
    String target;

    @Override
    public Integer call() throws Exception {
        ImageName newName = ImageName.parse(target);
        try (ImageStore store = main.openStore()) {
            ImageInfo image = store.tag(source, newName);
            spec.commandLine().getOut().printf("%s %s%n", newName, image.digest());
            return 0;
        }
    }
}
