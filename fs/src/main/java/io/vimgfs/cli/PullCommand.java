package io.vimgfs.cli;

import io.vimgfs.fs.Activity;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.Reference;
import io.vimgfs.store.registry.Puller;
import io.vimgfs.store.registry.RegistryReference;
import io.vimgfs.store.registry.TransferProgress;
import io.vimgfs.store.registry.UrlDownload;
import java.net.URI;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs pull SOURCE [NAME]}: bring an image from a registry or a URL into the store. */
@Command(name = "pull", mixinStandardHelpOptions = true,
        description = {"Pull a disk image from an OCI registry or a URL into the store.",
            "SOURCE is docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX] or an http(s):// URL.",
            "It may be a vimgfs image (stored byte for byte), a KubeVirt containerDisk (the one file",
            "under disk/), or a podman machine-os disk artifact (chosen by --disktype and --arch).",
            "NAME (required for URLs) may pin the disk bytes: NAME@sha256:<hex>. The image is probed",
            "and checked as incoming/ does; nothing is placed unless every check passes."})
final class PullCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Mixin
    RegistryOptions registry;

    @Option(names = "--arch", paramLabel = "ARCH", description = "Architecture to pick from an index (default: this host's; amd64 or x86_64, arm64 or aarch64).")
    String arch;

    @Option(names = "--disktype", paramLabel = "TYPE", defaultValue = "qemu",
            description = "machine-os disk type to pick (default qemu; others: applehv, hyperv, wsl…).")
    String diskType;

    @Option(names = "--parallel", paramLabel = "N", defaultValue = "" + Puller.Ranges.DEFAULT_IN_FLIGHT,
            description = "Range requests in flight for a vimgfs image of 64 MiB or more (default 4, in 16 MiB "
                    + "ranges; a killed pull run again resumes); 0 streams it in one request, without resume.")
    int parallel;

    @Option(names = "--lazy", description = "Return once the manifest and the chunk index are verified: the mount of"
            + " this store serves the disk over NBD while it downloads, every chunk checked (vimgfs overlay NAME OUT.qcow2"
            + " writes a VM disk on it), and names it when it is whole. Needs a mounted store and an image pushed with a"
            + " chunk index; any other image is pulled whole, with a warning.")
    boolean lazy;

    @Parameters(index = "0", paramLabel = "SOURCE", description = "docker://… reference or http(s):// URL.")
    String source;

    @Parameters(index = "1", arity = "0..1", paramLabel = "NAME", description = "Local name (default for docker://: HOST[:PORT]/REPO:TAG).")
    String name;

    @Override
    public Integer call() throws Exception {
        if (parallel < 0 || parallel > 64) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--parallel takes 0 to 64, not " + parallel);
        }
        boolean url = source.startsWith("http://") || source.startsWith("https://");
        if (lazy && url) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--lazy pulls from a registry (docker://…): a URL"
                    + " has no chunk index");
        }
        RegistryReference reference = url ? null : parseSource();
        Reference target = target(url, reference);
        try (ImageStore store = main.openStore(); TransferBar bar = registry.progress();
             Activity activity = Activity.start(store.root(), "pull", source)) {
            TransferProgress progress = activity.alongside(bar);
            ImageInfo image;
            try {
                if (url) {
                    image = new UrlDownload(store, registry.client(), progress).pull(URI.create(source), target);
                } else {
                    Puller.Choice choice = new Puller.Choice(arch != null ? arch : Puller.Choice.hostArch(), diskType);
                    Optional<ImageInfo> placed = lazy ? LazyPull.start(store, registry, reference, target, choice, progress,
                            spec.commandLine().getOut()) : Optional.empty();
                    if (lazy && placed.isEmpty()) {
                        activity.succeeded(0, -1);
                        return 0; // recorded: the mount serves it and names it when whole
                    }
                    image = placed.isPresent() ? placed.get() : new Puller(store, registry.client(), registry.credentials(),
                            progress, Puller.Ranges.defaults().withInFlight(parallel)).pull(reference, target, choice);
                }
            } catch (Exception e) {
                activity.failed(ErrorReporter.describe(e));
                throw e;
            }
            activity.succeeded(0, -1);
            bar.close();
            if (!registry.quiet) {
                spec.commandLine().getOut().printf("%s %s (%s, virtual size %s, %s)%n", target.name(), image.digest(),
                        image.format(), ByteSizes.format(image.virtualSize()), ByteSizes.format(image.size()));
            }
            return 0;
        }
    }

    private RegistryReference parseSource() {
        try {
            return RegistryReference.parse(source);
        } catch (InvalidNameException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "SOURCE " + e.getMessage()
                    + " (expected docker://HOST[:PORT]/REPO[:TAG] or an http(s):// URL)");
        }
    }

    private Reference target(boolean url, RegistryReference reference) {
        try {
            if (name != null) {
                return Reference.parse(name);
            }
            Optional<Reference> byDefault = url ? Optional.empty() : reference.defaultName();
            return byDefault.orElseThrow(() -> new CommandLine.ParameterException(spec.commandLine(),
                    "give a NAME: " + (url ? "a URL" : "a reference by digest") + " has no tag to name the image by"));
        } catch (InvalidNameException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "NAME " + e.getMessage());
        }
    }
}
