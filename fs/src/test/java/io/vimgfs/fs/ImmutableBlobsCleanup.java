package io.vimgfs.fs;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs {@code chattr -R -i} on a test's {@code @TempDir} fields after the test, before JUnit
 * deletes them: the store makes every placed blob immutable, and not even root can delete an
 * immutable file (an operator does the same before {@code rm -rf} of a store). Registered for
 * every test of the module through JUnit's extension auto-detection.
 */
public final class ImmutableBlobsCleanup implements AfterEachCallback, AfterAllCallback {

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        Object instance = context.getRequiredTestInstance();
        clearUnder(instance.getClass(), instance, false);
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        clearUnder(context.getRequiredTestClass(), null, true);
    }

    private static void clearUnder(Class<?> type, Object instance, boolean statics) throws Exception {
        for (Class<?> c = type; c != null && c != Object.class; c = c.getSuperclass()) {
            for (Field field : c.getDeclaredFields()) {
                if (field.isAnnotationPresent(TempDir.class) && Modifier.isStatic(field.getModifiers()) == statics
                        && Path.class.equals(field.getType())) {
                    field.setAccessible(true);
                    Path dir = (Path) field.get(instance);
                    if (dir != null && Files.isDirectory(dir)) {
                        Process chattr = new ProcessBuilder("chattr", "-R", "-f", "-i", dir.toString())
                                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                        chattr.waitFor(60, TimeUnit.SECONDS);
                    }
                }
            }
        }
    }
}
