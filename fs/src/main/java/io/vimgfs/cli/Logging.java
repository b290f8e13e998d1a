package io.vimgfs.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.logging.ConsoleHandler;
import java.util.logging.FileHandler;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

/** One-line log records to stderr, or to a file when the mount runs in the background. */
final class Logging {
    private static final String FORMAT = "%1$tF %1$tT.%1$tL %4$s %5$s%6$s%n";

    private Logging() {
    }

    static void configureForCommandLine() {
        configure(Level.WARNING, new ConsoleHandler());
    }

    static void configureForMount(boolean debug, Path logFile) throws IOException {
        Handler handler = logFile == null ? new ConsoleHandler() : new FileHandler(logFile.toString(), true);
        configure(debug ? Level.FINE : Level.INFO, handler);
    }

    private static void configure(Level level, Handler handler) {
        System.setProperty("java.util.logging.SimpleFormatter.format", FORMAT);
        LogManager.getLogManager().reset();
        handler.setFormatter(new SimpleFormatter());
        handler.setLevel(level);
        Logger root = Logger.getLogger("");
        root.setLevel(Level.WARNING);
        root.addHandler(handler);
        Logger.getLogger("io.vimgfs").setLevel(level);
    }
}
