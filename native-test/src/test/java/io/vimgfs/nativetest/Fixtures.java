package io.vimgfs.nativetest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Random;

/**
 * Source files for the mount tests. The big ones (random bytes, a qcow2 made from them) are made
 * once per build in target/native-fixtures and shared by every class, since making them is the
 * slow part; small ones are made per test from a seed, so each has its own digest.
 */
final class Fixtures {
    static final long MIB = 1024L * 1024;
    private static final Path DIR = Path.of("target", "native-fixtures").toAbsolutePath();

    private Fixtures() {
    }

    /** {@code mib} MiB from /dev/urandom, made once. */
    static synchronized Path random(long mib) {
        Path file = DIR.resolve("random-" + mib + "m.raw");
        if (!Files.exists(file)) {
            Path partial = partial(file);
            Shell.sh("head -c " + mib + "M /dev/urandom > '" + partial + "'").ok();
            publish(partial, file);
        }
        return file;
    }

    /** A fully allocated qcow2 (64 KiB clusters) holding {@code mib} MiB of random data, made once. */
    static synchronized Path randomQcow2(long mib) {
        Path file = DIR.resolve("random-" + mib + "m.qcow2");
        if (!Files.exists(file)) {
            Path partial = partial(file);
            Shell.run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", random(mib).toString(), partial.toString()).ok();
            publish(partial, file);
        }
        return file;
    }

    /** A small file of {@code size} seeded pseudo-random bytes: different seeds, different digests. */
    static Path small(Path dir, String name, int size, long seed) {
        byte[] bytes = new byte[size];
        new Random(seed).nextBytes(bytes);
        try {
            return Files.write(dir.resolve(name), bytes);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** The SHA-256 of a file in hex, in Java (sha256sum is 5x slower), cached beside big fixtures. */
    static String sha256(Path file) {
        Path cached = file.resolveSibling(file.getFileName() + ".sha256");
        try {
            if (file.startsWith(DIR) && Files.exists(cached)) {
                return Files.readString(cached).strip();
            }
            String hex = Shell.sha256InProcess(file);
            if (file.startsWith(DIR)) {
                Files.writeString(cached, hex);
            }
            return hex;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    private static Path partial(Path file) {
        try {
            Files.createDirectories(DIR);
            return file.resolveSibling(file.getFileName() + ".partial");
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static void publish(Path partial, Path file) {
        try {
            Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
