package io.vimgfs.nativetest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs real commands with a timeout, as a user at a shell would, and the built vimgfs command. */
final class Shell {
    static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

    private Shell() {
    }

    /** The outcome of one command. */
    record Result(List<String> command, int exit, String out, String err) {
        Result ok() {
            if (exit != 0) {
                throw new AssertionError("command failed (exit " + exit + "): " + String.join(" ", command)
                        + "\nstdout: " + out + "\nstderr: " + err);
            }
            return this;
        }

        Result failed() {
            if (exit == 0) {
                throw new AssertionError("command should have failed: " + String.join(" ", command) + "\nstdout: " + out);
            }
            return this;
        }
    }

    static Result run(String... command) {
        return run(DEFAULT_TIMEOUT, Map.of(), List.of(command));
    }

    static Result sh(String script) {
        return run(DEFAULT_TIMEOUT, Map.of(), List.of("bash", "-c", script));
    }

    /** Starts a command in the background (output discarded), for tests that kill or race it. */
    static Process spawn(String... command) {
        try {
            return new ProcessBuilder(command)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
        } catch (IOException e) {
            throw new AssertionError("cannot start " + List.of(command), e);
        }
    }

    static Result run(Duration timeout, Map<String, String> env, List<String> command) {
        try {
            Path out = Files.createTempFile("vimgfs-test-out", ".txt");
            Path err = Files.createTempFile("vimgfs-test-err", ".txt");
            try {
                ProcessBuilder builder = new ProcessBuilder(command)
                        .redirectOutput(out.toFile()).redirectError(err.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
                builder.environment().putAll(env);
                Process process = builder.start();
                if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.descendants().forEach(ProcessHandle::destroyForcibly);
                    process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                    throw new AssertionError("timed out after " + timeout + ": " + String.join(" ", command));
                }
                return new Result(command, process.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                        Files.readString(err, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new AssertionError("cannot run " + command, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted running " + command, e);
        }
    }

    /** The vimgfs command exactly as users run it, on the given store. */
    static Result vimgfs(Path store, String... args) {
        List<String> command = new ArrayList<>(List.of(java(), "-jar", jar().toString(), "--store", store.toString()));
        command.addAll(List.of(args));
        return run(DEFAULT_TIMEOUT, Map.of(), command);
    }

    /** The vimgfs command without --store, for the mount forms. */
    static Result vimgfsRaw(String... args) {
        List<String> command = new ArrayList<>(List.of(java(), "-jar", jar().toString()));
        command.addAll(List.of(args));
        return run(DEFAULT_TIMEOUT, Map.of(), command);
    }

    static Path jar() {
        Path jar = Path.of(System.getProperty("vimgfs.jar", "../fs/target/vimgfs.jar"));
        if (!Files.isRegularFile(jar)) {
            throw new AssertionError("the vimgfs jar is not built: " + jar.toAbsolutePath() + " (run mvn package)");
        }
        return jar;
    }

    static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** SHA-256 in this JVM (SHA-NI, ~1.5 GB/s): for big files where sha256sum would be slow. */
    static String sha256InProcess(Path file) {
        try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(file)) {
            java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
            java.nio.ByteBuffer buffer = java.nio.ByteBuffer.allocateDirect(1 << 20);
            while (channel.read(buffer.clear()) > 0) {
                sha.update(buffer.flip());
            }
            return java.util.HexFormat.of().formatHex(sha.digest());
        } catch (IOException | java.security.NoSuchAlgorithmException e) {
            throw new AssertionError("cannot hash " + file, e);
        }
    }

    static String sha256(Path file) {
        return run("sha256sum", file.toString()).ok().out().substring(0, 64);
    }
}
