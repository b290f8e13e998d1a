package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the real {@code qemu-img} and {@code qemu-io} to make test images, and patches bytes in them. */
public final class QemuImg {

    private static final ObjectMapper JSON = new ObjectMapper();

    private QemuImg() {}

    /** Runs {@code qemu-img args…}, failing the test with its output unless it exits 0. */
    public static String img(Object... args) {
        return run("qemu-img", args);
    }

    /** Runs each {@code qemu-io} command (e.g. {@code write -P 0xab 0 1M}) against a qcow2 image. */
    public static void io(Path image, String... commands) {
        List<Object> args = new ArrayList<>(List.of("-f", "qcow2"));
        for (String command : commands) {
            args.add("-c");
            args.add(command);
        }
        args.add(image);
        run("qemu-io", args.toArray());
    }

    public static void create(Path image, String format, String size, String... options) {
        List<Object> args = new ArrayList<>(List.of("create", "-q", "-f", format));
        for (String option : options) {
            args.add("-o");
            args.add(option);
        }
        args.add(image);
        args.add(size);
        img(args.toArray());
    }

    public static void convert(Path from, Path to, String format, String... extra) {
        List<Object> args = new ArrayList<>(List.of("convert", "-q", "-f", "raw", "-O", format));
        args.addAll(List.of(extra));
        args.add(from);
        args.add(to);
        img(args.toArray());
    }

    /** What {@code qemu-img info --output=json} says, e.g. {@code format} and {@code virtual-size}. */
    public static JsonNode info(Path image) {
        try {
            return JSON.readTree(img("info", "--output=json", image));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static void writeLong(Path file, long offset, long value) throws IOException {
        write(file, offset, ByteBuffer.allocate(8).putLong(0, value));
    }

    public static void writeInt(Path file, long offset, int value) throws IOException {
        write(file, offset, ByteBuffer.allocate(4).putInt(0, value));
    }

    public static void writeAscii(Path file, long offset, String text) throws IOException {
        write(file, offset, ByteBuffer.wrap(text.getBytes(StandardCharsets.US_ASCII)));
    }

    public static long readLong(Path file, long offset) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(8);
        try (FileChannel ch = FileChannel.open(file)) {
            ch.read(buf, offset);
        }
        return buf.getLong(0);
    }

    public static void truncate(Path file, long length) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(length);
        }
    }

    private static void write(Path file, long offset, ByteBuffer buf) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(buf, offset);
        }
    }

    private static String run(String tool, Object... args) {
        List<String> command = new ArrayList<>(List.of(tool));
        for (Object arg : args) {
            command.add(arg.toString());
        }
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!process.waitFor(120, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError(command + " timed out");
            }
            if (process.exitValue() != 0) {
                throw new AssertionError(command + " exited " + process.exitValue() + ": " + output);
            }
            return output;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + tool + " (install qemu-utils)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
