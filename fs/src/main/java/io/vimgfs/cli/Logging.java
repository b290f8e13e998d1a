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
    /**
     * The JDK's LogManager closes every handler from a shutdown hook of its own, racing the
     * mount's hook that unmounts after SIGTERM: the placements finished during shutdown and the
     * unmount itself went unlogged. This manager ignores that one reset; the handlers flush on
     * every record, so nothing is lost when the JVM exits.
     */
    public static final class ShutdownSafeManager extends LogManager {
        @Override
        public void reset() {
            if (!Thread.currentThread().getClass().getName().startsWith(LogManager.class.getName() + "$")) {
                super.reset();
            }
        }
    }

    /** Must run before anything logs: the manager is chosen once, when logging starts. */
    static void installManager() {
        System.setProperty("java.util.logging.manager", ShutdownSafeManager.class.getName());
    }

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
