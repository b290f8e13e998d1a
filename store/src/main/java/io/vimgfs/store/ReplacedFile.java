package io.vimgfs.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * A small file of {@code .vimgfs/} that is replaced whole, never edited: holds.json, last-use.json.
 * Owns the replacement (write a temporary sibling, fsync it, rename it over the file, fsync the
 * directory), so a crash at any step leaves the old file or the new one, never a torn or missing
 * one; the temporary file a crash leaves is named {@code FILE.*.tmp}, which gc removes. Callers
 * hold the store lock, so no two replacements of one file overlap.
 */
final class ReplacedFile {
    /** The crash points of one file's replacement, in the order they happen. */
    record Steps(CrashPoint torn, CrashPoint written, CrashPoint staged, CrashPoint renamed, CrashPoint synced) {
    }

    private final Path file;
    private final Steps steps;
    private final Consumer<CrashPoint> crashHook;

    ReplacedFile(Path file, Steps steps, Consumer<CrashPoint> crashHook) {
        this.file = file;
        this.steps = steps;
        this.crashHook = crashHook;
    }

    Path path() {
        return file;
    }

    /** Replaces the file with {@code content}; once this returns the new content is durable. */
    void replace(byte[] content) throws IOException {
        Path staged = file.resolveSibling(file.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try (FileChannel channel = FileChannel.open(staged, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer buffer = ByteBuffer.wrap(content);
            write(channel, buffer.limit(content.length / 2));
            crashHook.accept(steps.torn());
            write(channel, buffer.limit(content.length));
            crashHook.accept(steps.written());
            channel.force(true);
        }
        crashHook.accept(steps.staged());
        Files.move(staged, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        crashHook.accept(steps.renamed());
        BlobFiles.syncDirectory(file.getParent());
        crashHook.accept(steps.synced());
    }

    private static void write(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }
}
