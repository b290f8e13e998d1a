package io.vimgfs.cli;

import io.vimgfs.nbd.LazyExports;
import io.vimgfs.nbd.NbdClient;
import io.vimgfs.store.ImageFormat;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImagePaths;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.LazyPulls;
import io.vimgfs.store.registry.LazyManifest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code vimgfs overlay NAME OUT.qcow2}: a VM's disk on a stored or lazily pulled image, written
 * with {@code qemu-img create}. A lazy image's overlay is backed by the mount's NBD export with
 * {@code reconnect-delay}, so that a restart of the mount pauses the VM's reads instead of failing
 * them; a stored image's by its blob, through the mount's {@code by-digest/} when one is live.
 */
@Command(name = "overlay", mixinStandardHelpOptions = true,
        description = {"Write a qcow2 overlay for a VM on a stored or lazily pulled image.",
            "A lazily pulled image (vimgfs pull --lazy) is its backing over NBD, served by the mount on",
            "STORE/.vimgfs/nbd.sock with QEMU's reconnect-delay; a stored image is its backing by path."})
final class OverlayCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Option(names = "--reconnect-delay", paramLabel = "SECONDS", defaultValue = "30",
            description = "How long QEMU holds a lazy image's reads while the mount restarts (default 30).")
    int reconnectDelay;

    @Option(names = "--nbd", description = "Back the overlay by the NBD export even when the image is stored.")
    boolean nbd;

    @Parameters(index = "0", paramLabel = "NAME", description = "An image: name, sha256:<hex>, or a unique digest prefix.")
    String reference;

    @Parameters(index = "1", paramLabel = "OUT", description = "The overlay to write (must not exist).")
    Path out;

    @Override
    public Integer call() throws Exception {
        if (reconnectDelay < 0 || reconnectDelay > 3600) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--reconnect-delay takes 0 to 3600 seconds, not "
                    + reconnectDelay);
        }
        if (Files.exists(out, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "OUT " + out + " exists; remove it or choose"
                    + " another file");
        }
        try (ImageStore store = main.openStore()) {
            Optional<LazyPulls.Pull> lazy = lazyPull(store).filter(p -> store.image(p.layer()).isEmpty());
            Optional<ImageInfo> stored = lazy.isPresent() ? Optional.empty() : Optional.of(store.resolve(reference));
            String backing;
            ImageFormat format = lazy.isPresent() ? LazyManifest.formatOf(lazy.get()) : stored.get().format();
            String described;
            if (lazy.isPresent() || nbd) {
                String export = (lazy.isPresent() ? lazy.get().layer() : stored.get().digest()).toString();
                Path socket = LazyExports.socketOf(store.root());
                if (!NbdClient.serves(socket, export)) {
                    throw new IOException("no mount of this store serves " + export + " over NBD at " + socket
                            + "; mount the store first");
                }
                backing = nbdBacking(format, socket, export);
                described = export + " over NBD at " + socket + ", reconnect-delay " + reconnectDelay + " s";
            } else {
                backing = pathOf(store, stored.get()).toString();
                described = stored.get().digest() + " at " + backing;
            }
            create(backing, format);
            spec.commandLine().getOut().printf("%s: qcow2 overlay on %s (%s)%n", out, reference, described);
            return 0;
        }
    }

    /** A lazy pull named by the reference, if it is a name (a digest of a lazy pull works too). */
    private Optional<LazyPulls.Pull> lazyPull(ImageStore store) throws IOException {
        LazyPulls pulls = store.directory().lazyPulls();
        try {
            Optional<LazyPulls.Pull> byName = pulls.find(ImageName.parse(reference));
            if (byName.isPresent()) {
                return byName;
            }
        } catch (InvalidNameException e) {
            // not a name: maybe a digest
        }
        return pulls.list().stream().filter(p -> p.layer().toString().equals(reference)
                || p.layer().hex().startsWith(reference) && reference.length() >= 12).findFirst();
    }

    private String nbdBacking(ImageFormat format, Path socket, String export) {
        return "json:{\"driver\":\"" + format.qemuDriver() + "\",\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"unix\","
                + "\"path\":\"" + socket + "\"},\"export\":\"" + export + "\",\"reconnect-delay\":" + reconnectDelay + "}}";
    }

    private static Path pathOf(ImageStore store, ImageInfo image) throws IOException {
        return store.liveMounts().stream().findFirst()
                .map(m -> m.mountpoint().resolve(ImagePaths.byDigest(image.digest())))
                .orElse(store.imagePath(image.digest()));
    }

    private void create(String backing, ImageFormat format) throws IOException, InterruptedException {
        List<String> command = List.of("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F",
                format.qemuDriver(), out.toString());
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IOException("cannot run qemu-img (install qemu-utils): " + e.getMessage(), e);
        }
        String text = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
            process.destroyForcibly();
            throw new IOException("qemu-img create failed: " + text.lines().reduce((a, b) -> b).orElse("no output"));
        }
    }
}
