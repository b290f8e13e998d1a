package io.vimgfs.nativetest;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.AnnotatedElementContext;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.io.TempDirFactory;

/**
 * Every {@code @TempDir} of the module (field or parameter): made as JUnit makes them, and when
 * the test or class that made one ends, {@code chattr -R -i} on it before JUnit deletes it. The
 * store makes every placed blob immutable, and not even root can delete an immutable file (an
 * operator does the same before {@code rm -rf} of a store). The factory and the callbacks are
 * wired in {@code junit-platform.properties}; directories are matched to the context that made
 * them, so a class's directory keeps its flags until the class is done.
 */
public final class ImmutableTempDirs implements TempDirFactory, AfterEachCallback, AfterAllCallback {
    private static final Map<String, List<Path>> MADE_BY = new ConcurrentHashMap<>();

    @Override
    public Path createTempDirectory(AnnotatedElementContext element, ExtensionContext context) throws Exception {
        Path dir = Files.createTempDirectory("junit");
        MADE_BY.computeIfAbsent(context.getUniqueId(), id -> new CopyOnWriteArrayList<>()).add(dir);
        return dir;
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        clear(context);
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        clear(context);
    }

    private static void clear(ExtensionContext context) throws Exception {
        for (Path dir : MADE_BY.getOrDefault(context.getUniqueId(), List.of())) {
            if (Files.isDirectory(dir)) {
                Process chattr = new ProcessBuilder("chattr", "-R", "-f", "-i", dir.toString())
                        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                chattr.waitFor(60, TimeUnit.SECONDS);
            }
        }
        MADE_BY.remove(context.getUniqueId());
    }
}
