package io.vimgfs.cli;

import io.vimgfs.fs.Activity;
import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.registry.Pusher;
import io.vimgfs.store.registry.RegistryReference;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs push NAME DEST}: send a stored image to a registry. */
@Command(name = "push", mixinStandardHelpOptions = true,
        description = {"Push a stored image to an OCI registry.",
            "--format vimgfs (default) sends the stored config and layer byte for byte, and the stored",
            "manifest with a chunk index of the disk added as its second layer (1 MiB SHA-256 chunks and",
            "a zero map, for lazy pulls); a pull elsewhere gets the same disk digest and the manifest the",
            "registry holds. --no-chunk-index sends the stored manifest byte for byte, for readers older",
            "than the index. --format containerdisk writes a KubeVirt containerDisk (a gzip tar layer",
            "holding disk/disk.img, 107:107, mode 0444)."})
final class PushCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Mixin
    RegistryOptions registry;

    @Option(names = "--format", paramLabel = "FORMAT", defaultValue = "vimgfs",
            description = "vimgfs or containerdisk (default vimgfs).")
    String format;

    @Option(names = "--no-chunk-index", description = "Send a vimgfs image's stored manifest as it is, without adding"
            + " a chunk index (for vimgfs versions before it); an image pulled with an index keeps it.")
    boolean noChunkIndex;

    @Parameters(index = "0", paramLabel = "NAME", description = "A stored image: name, sha256:<hex> or a unique digest prefix.")
    String name;

    @Parameters(index = "1", paramLabel = "DEST", description = "docker://HOST[:PORT]/REPO[:TAG].")
    String destination;

    @Override
    public Integer call() throws Exception {
        Pusher.Format chosen = switch (format) {
            case "vimgfs" -> Pusher.Format.VIMGFS;
            case "containerdisk" -> Pusher.Format.CONTAINERDISK;
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "--format is vimgfs or containerdisk, not '" + format + "'");
        };
        RegistryReference dest;
        try {
            dest = RegistryReference.parse(destination);
        } catch (InvalidNameException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "DEST " + e.getMessage());
        }
        try (ImageStore store = main.openStore(); TransferBar bar = registry.progress();
             Activity activity = Activity.start(store.root(), "push", destination)) {
            Digest manifest;
            try {
                ImageInfo image = store.resolve(name);
                manifest = new Pusher(store, registry.client(), registry.credentials(), activity.alongside(bar))
                        .push(image, dest, chosen, !noChunkIndex);
            } catch (Exception e) {
                activity.failed(ErrorReporter.describe(e));
                throw e;
            }
            activity.succeeded(0, -1);
            bar.close();
            if (!registry.quiet) {
                spec.commandLine().getOut().printf("%s %s%n", dest, manifest);
            }
            return 0;
        }
    }
}
