package io.vimgfs.cli;

import io.vimgfs.fs.MountRequest;
import io.vimgfs.fs.Mounter;
import io.vimgfs.fs.Mounts;
import io.vimgfs.store.StoreDirectory;
import io.vimgfs.store.StoreReadOnlyException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine;

/**
 * {@code vimgfs [STORE] MOUNTPOINT [-o OPTS] [-f]}: mounts a store (SPEC §8). By default it starts
 * the mount in a background process and returns once the mount is live; {@code -f} serves in
 * this process until unmounted.
 */
@Command(name = "mount", mixinStandardHelpOptions = true,
        description = {"Mount a store. Also what 'vimgfs MOUNTPOINT' and 'vimgfs STORE MOUNTPOINT' run,",
            "and what mount -t fuse.vimgfs STORE MOUNTPOINT and /etc/fstab call."})
final class MountCommand implements Callable<Integer> {
    /** Main's subcommands by name: an argument that is one of them is a verb, not a mountpoint. */
    private static final Set<String> VERBS = Arrays.stream(Main.class.getAnnotation(Command.class).subcommands())
            .map(verb -> verb.getAnnotation(Command.class).name())
            .collect(Collectors.toUnmodifiableSet());
    private static final long MOUNT_TIMEOUT_SECONDS = 60;
    /**
     * A long-lived daemon on a small host: the serial collector on a capped heap that gives memory
     * back (the default would size the heap from the host's RAM and keep what churn made it grow to).
     */
    private static final List<String> DAEMON_JVM_OPTIONS = List.of("-XX:+UseSerialGC", "-Xmx1g",
            "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=30", "-XX:+ExitOnOutOfMemoryError");

    @ParentCommand
    Main main;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0..1", arity = "1..2", paramLabel = "[STORE] MOUNTPOINT")
    List<Path> paths;

    @Option(names = "-o", paramLabel = "OPTS", description = "Mount options, comma-separated: allow_other, nonempty, "
            + "entry_timeout=N, … (mount(8)'s rw, nofail, x-systemd.* are accepted and ignored).")
    List<String> optionLists = new ArrayList<>();

    @Option(names = {"-f", "--foreground"}, description = "Stay in the foreground (for systemd); log to stderr.")
    boolean foreground;

    @Option(names = {"-d", "--debug"}, description = "Debug logging (and libfuse's request trace).")
    boolean debug;

    @Option(names = "--log-file", paramLabel = "FILE",
            description = "Where the background mount logs (default: STORE/.vimgfs/mount.log).")
    Path logFile;

    /** The store this mount is of: the first of two paths, else --store or the default. */
    Path store() {
        return paths != null && paths.size() == 2 ? paths.get(0) : main.storePath();
    }

    /** Lets {@code vimgfs MOUNTPOINT} and {@code vimgfs STORE MOUNTPOINT -o …} mean {@code vimgfs mount …}. */
    static String[] rewriteMountForm(String[] args) {
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("--store") || arg.equals("-o") || arg.equals("--log-file")) {
                i++;
                continue;
            }
            if (arg.startsWith("-")) {
                continue;
            }
            if (VERBS.contains(arg)) {
                return args;
            }
            String[] rewritten = new String[args.length + 1];
            rewritten[0] = "mount";
            System.arraycopy(args, 0, rewritten, 1, args.length);
            return rewritten;
        }
        return args;
    }

    @Override
    public Integer call() throws Exception {
        Path store = store();
        Path mountpoint = paths.get(paths.size() - 1).toAbsolutePath().normalize();
        MountRequest request = new MountRequest(store.toAbsolutePath().normalize(), mountpoint,
                MountRequest.splitOptions(optionLists), debug);
        if (foreground) {
            Logging.configureForMount(debug, logFile);
            Mounter.runForeground(request);
            return 0;
        }
        Mounter.preflight(request);
        return startInBackground(request);
    }

    /** Starts {@code vimgfs mount -f} detached, and waits until the mount is live or the child fails. */
    private int startInBackground(MountRequest request) throws IOException, InterruptedException {
        Path log = logFile != null ? logFile : StoreDirectory.of(request.store()).workFile("mount.log");
        Files.createDirectories(log.toAbsolutePath().getParent());
        prepareLog(request.store(), log);
        long logStart = Files.exists(log) ? Files.size(log) : 0;
        List<String> command = new ArrayList<>();
        if (Files.isExecutable(Path.of("/usr/bin/setsid"))) {
            command.add("/usr/bin/setsid"); // out of the caller's session: a terminal hangup must not unmount
        }
        command.add(ProcessHandle.current().info().command().orElse("java"));
        List<String> jvmArguments = ManagementFactory.getRuntimeMXBean().getInputArguments();
        command.addAll(jvmArguments);
        if (jvmArguments.stream().noneMatch(a -> a.startsWith("-Xmx") || a.startsWith("-XX:+Use") && a.endsWith("GC"))) {
            command.addAll(DAEMON_JVM_OPTIONS);
        }
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "mount", "-f", "--log-file", log.toString()));
        if (debug) {
            command.add("-d");
        }
        if (!request.options().isEmpty()) {
            command.addAll(List.of("-o", String.join(",", request.options())));
        }
        command.addAll(List.of(request.store().toString(), request.mountpoint().toString()));
        Process child = new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectErrorStream(true)
                .start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(MOUNT_TIMEOUT_SECONDS);
        while (System.nanoTime() < deadline) {
            if (Mounts.isVimgfsAt(request.mountpoint())) {
                return 0;
            }
            if (child.waitFor(10, TimeUnit.MILLISECONDS)) {
                spec.commandLine().getErr().println("vimgfs: mounting " + request.store() + " at " + request.mountpoint()
                        + " failed:\n" + tail(log, logStart).strip());
                return 1;
            }
        }
        child.destroy();
        spec.commandLine().getErr().println("vimgfs: the mount at " + request.mountpoint() + " did not come up within "
                + MOUNT_TIMEOUT_SECONDS + " s; see " + log);
        return 1;
    }

    /**
     * Creates the log (names, digests and errors of the host's images: owner-only) or checks that
     * it takes appends, before the daemon's output is sent there. A log in a store whose
     * filesystem refuses writes fails the mount as the store would say it.
     */
    private static void prepareLog(Path store, Path log) throws IOException {
        try (FileChannel ignored = FileChannel.open(log, Set.of(StandardOpenOption.CREATE, StandardOpenOption.APPEND),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
            // opened, so the daemon's redirection will open it too
        } catch (FileSystemException e) {
            if (log.toAbsolutePath().startsWith(store) && StoreReadOnlyException.isWriteRefused(e)) {
                throw StoreReadOnlyException.writesRefused(store, "mount it", log);
            }
            throw e;
        }
    }

    private static String tail(Path log, long from) throws IOException {
        try (RandomAccessFile file = new RandomAccessFile(log.toFile(), "r")) {
            long start = Math.max(from, file.length() - 4096);
            byte[] bytes = new byte[(int) (file.length() - start)];
            file.seek(start);
            file.readFully(bytes);
            return new String(bytes, StandardCharsets.UTF_8);
        }
    }
}
