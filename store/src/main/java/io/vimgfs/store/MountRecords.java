package io.vimgfs.store;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * The records of a store's live mounts, one file {@code .vimgfs/mounts/<pid>} per daemon ("at
 * MOUNTPOINT by pid N"), held locked while the daemon lives: claimed by a mount, listed by
 * status and by the keep rule (paths under a live mount are never statted), reaped when their
 * lock is free. A record is live exactly while its file lock is held: a pid can be reused, a lock
 * cannot outlive its process. Readable on a read-only filesystem: liveness is probed with a shared
 * lock on a descriptor opened for reading.
 */
public final class MountRecords {
    /** One live mount: where it is, and the daemon serving it. */
    public record MountRecord(Path mountpoint, long pid) {
    }

    /**
     * The records this process claimed, by file. Never reread from disk: closing any descriptor
     * of a file drops every POSIX lock this process holds on it, so one read of our own record
     * (an overlay scan asks for the live mounts) would let other processes reap a live mount.
     */
    private static final Map<Path, MountRecord> CLAIMED = new ConcurrentHashMap<>();

    private final Path directory;

    MountRecords(Path directory) {
        this.directory = directory;
    }

    /**
     * Records a mount at {@code mountpoint} by this process. It never refuses: a store may be
     * mounted again while an old daemon still serves a copy of its mount (libvirt's private mount
     * namespace keeps one alive after {@code fusermount -u}), and several mounts of a store are as
     * safe as several CLI calls. The record goes when closed; a crashed daemon's stays unlocked,
     * and the next claim removes it.
     */
    Closeable claim(Path mountpoint) throws IOException {
        Files.createDirectories(directory);
        removeDead();
        long self = ProcessHandle.current().pid();
        Path record = directory.resolve(Long.toString(self));
        FileChannel channel = FileChannel.open(record, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        try {
            channel.lock();
            channel.write(ByteBuffer.wrap(("at " + mountpoint + " by pid " + self + "\n").getBytes(StandardCharsets.UTF_8)), 0);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        CLAIMED.put(record, new MountRecord(mountpoint, self));
        return () -> {
            CLAIMED.remove(record);
            Files.deleteIfExists(record);
            channel.close();
        };
    }

    /** The live mounts, in the order of their records' names. */
    public List<MountRecord> live() throws IOException {
        if (!Files.isDirectory(directory)) {
            return List.of();
        }
        List<MountRecord> live = new ArrayList<>();
        try (Stream<Path> records = Files.list(directory)) {
            for (Path record : records.sorted().toList()) {
                if (isOurs(record)) {
                    Optional.ofNullable(CLAIMED.get(record)).ifPresent(live::add);
                } else if (isLocked(record)) {
                    parse(record).ifPresent(live::add);
                }
            }
        }
        return live;
    }

    /** The mountpoints of the live mounts. */
    Set<Path> roots() throws IOException {
        Set<Path> roots = new HashSet<>();
        live().forEach(r -> roots.add(r.mountpoint()));
        return roots;
    }

    private void removeDead() throws IOException {
        try (Stream<Path> records = Files.list(directory)) {
            for (Path record : records.toList()) {
                if (!(isOurs(record) && CLAIMED.containsKey(record)) && !isLocked(record)) {
                    Files.deleteIfExists(record);
                }
            }
        }
    }

    private static Optional<MountRecord> parse(Path record) throws IOException {
        String line;
        try {
            line = Files.readString(record, StandardCharsets.UTF_8).strip();
        } catch (NoSuchFileException e) {
            return Optional.empty(); // its mount ended while we listed
        }
        int by = line.lastIndexOf(" by pid ");
        if (!line.startsWith("at /") || by < 0) {
            return Optional.empty();
        }
        try {
            return Optional.of(new MountRecord(Path.of(line.substring(3, by)), Long.parseLong(line.substring(by + 8))));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** Whether the record has this process's pid for a name: ours if we claimed it, else a dead process's with our pid. */
    private static boolean isOurs(Path record) {
        return record.getFileName().toString().equals(Long.toString(ProcessHandle.current().pid()));
    }

    /** Whether some other process holds the record's lock (its daemon lives); never asked of our own. */
    private static boolean isLocked(Path record) throws IOException {
        try (FileChannel channel = FileChannel.open(record, StandardOpenOption.READ)) {
            FileLock probe = channel.tryLock(0, Long.MAX_VALUE, true);
            if (probe == null) {
                return true;
            }
            probe.release();
            return false;
        } catch (NoSuchFileException e) {
            return false; // gone: nothing to list, nothing to remove
        } catch (OverlappingFileLockException e) {
            return true; // this JVM holds it
        }
    }
}
