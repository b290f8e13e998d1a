package io.vimgfs.cli;

import io.vimgfs.store.AmbiguousReferenceException;
import io.vimgfs.store.ImageNotFoundException;
import io.vimgfs.store.ImageRejectedException;
import io.vimgfs.store.InvalidNameException;
import io.vimgfs.store.StoreDamagedException;
import io.vimgfs.store.StoreLockedException;
import io.vimgfs.store.StoreReadOnlyException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;

/** Turns any failure of a verb into one line on stderr, naming the store and what to do, and exit 1. */
final class ErrorReporter implements CommandLine.IExecutionExceptionHandler {

    @Override
    public int handleExecutionException(Exception e, CommandLine cli, CommandLine.ParseResult parseResult) {
        Main main = cli.getCommandSpec().root().userObject() instanceof Main m ? m : null;
        java.nio.file.Path path = cli.getCommand() instanceof MountCommand mount ? mount.store()
                : main == null ? null : main.storePath();
        String message = describe(e);
        String store = path == null || message.startsWith("store " + path.toAbsolutePath().normalize())
                ? "" : "store " + path + ": ";
        if (e instanceof io.vimgfs.store.registry.RegistryException) {
            store = ""; // its message names the reference, which is what the user acts on
        } else if (cli.getCommand() instanceof PullCommand pull) {
            store = pull.source + ": ";
        } else if (cli.getCommand() instanceof PushCommand push) {
            store = push.destination + ": ";
        }
        cli.getErr().println("vimgfs: " + store + message);
        if (Boolean.getBoolean("vimgfs.debug")) {
            e.printStackTrace(cli.getErr());
        }
        return 1;
    }

    static String describe(Throwable e) {
        if (e instanceof ImageNotFoundException) {
            return e.getMessage() + " (see 'vimgfs ls')";
        }
        if (e instanceof AmbiguousReferenceException || e instanceof InvalidNameException) {
            return e.getMessage();
        }
        if (e instanceof ImageRejectedException rejected) {
            return "image refused (" + rejected.reason().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ')
                    + "): " + e.getMessage();
        }
        if (e instanceof StoreLockedException || e instanceof StoreDamagedException || e instanceof StoreReadOnlyException) {
            return e.getMessage();
        }
        if (e instanceof NoSuchFileException missing) {
            return "no such file: " + missing.getFile();
        }
        if (e instanceof AccessDeniedException denied) {
            return "permission denied: " + denied.getFile() + " (run as root, or choose a store you own with --store)";
        }
        if (e instanceof FileSystemException fs) {
            return fs.getFile() + ": " + (fs.getReason() != null ? fs.getReason() : fs.getMessage());
        }
        String message = e.getMessage();
        return message == null || message.isBlank() ? e.getClass().getSimpleName() : message;
    }
}
