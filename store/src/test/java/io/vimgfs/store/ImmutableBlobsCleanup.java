package io.vimgfs.store;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.io.TempDir;

/**
 * Clears the immutable flag of every file under a test's {@code @TempDir} fields after the test,
 * before JUnit deletes the directory: a placed blob is immutable, and not even root can delete it
 * while it is (what an operator does with {@code chattr -R -i STORE/blobs} before {@code rm -rf}).
 * Registered for every test of the module through JUnit's extension auto-detection.
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
                    if (dir != null) {
                        clearAll(dir);
                    }
                }
            }
        }
    }

    /** Clears the flag of every regular file under {@code dir}. */
    static void clearAll(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        ImmutableFlag flag = new ImmutableFlag(dir);
        List<Path> files;
        try (Stream<Path> walk = Files.walk(dir)) {
            files = walk.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).toList();
        }
        for (Path file : files) {
            try {
                flag.clear(file);
            } catch (IOException e) {
                // gone meanwhile, or not ours: JUnit reports what it cannot delete
            }
        }
    }
}
