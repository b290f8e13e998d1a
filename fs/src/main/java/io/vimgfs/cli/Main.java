package io.vimgfs.cli;

import io.vimgfs.store.ImageStore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The {@code vimgfs} command: mounts a store (SPEC §8) or runs an admin verb on it. Exit codes:
 * 0 success, 1 failure, 2 bad usage.
 */
@Command(name = "vimgfs",
        mixinStandardHelpOptions = true,
        version = "vimgfs 0.1.0",
        description = {
            "Keeps VM disk images in a content-addressed store and shows it as a directory.",
            "",
            "  vimgfs MOUNTPOINT                 mount the default store",
            "  vimgfs STORE MOUNTPOINT [-o OPTS] mount a store (the mount -t fuse.vimgfs form)",
            "  vimgfs VERB …                     work on a store, mounted or not"},
        subcommands = {
            MountCommand.class,
            ListCommand.class,
            ImportCommand.class,
            TagCommand.class,
            RemoveCommand.class,
            GcCommand.class,
            FsckCommand.class,
            InspectCommand.class,
            PullCommand.class,
            PushCommand.class,
            OverlayCommand.class,
            ServeCommand.class,
            StatusCommand.class,
            HoldCommand.class,
            PruneCommand.class,
            CommandLine.HelpCommand.class})
public final class Main implements Callable<Integer> {

    @Option(names = "--store", paramLabel = "DIR", scope = CommandLine.ScopeType.INHERIT,
            description = "The store directory (default: $VIMGFS_STORE, else /var/lib/vimgfs as root, "
                    + "else $XDG_DATA_HOME/vimgfs).")
    Path store;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        Logging.installManager();
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (used by tests without a new JVM). */
    public static int run(String... args) {
        Logging.configureForCommandLine();
        return commandLine().execute(MountCommand.rewriteMountForm(args));
    }

    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler(new ErrorReporter());
        cli.setCaseInsensitiveEnumValuesAllowed(true);
        return cli;
    }

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return CommandLine.ExitCode.USAGE;
    }

    /** The store directory this invocation works on. */
    Path storePath() {
        return store != null ? store : StoreLocation.defaultStore();
    }

    ImageStore openStore() throws IOException {
        return ImageStore.open(storePath());
    }
}
