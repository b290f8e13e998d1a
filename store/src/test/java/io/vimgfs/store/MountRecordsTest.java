package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A mount's record is live exactly while its daemon holds it: status and the keep rule (which
 * never stats a path under a live mount) see another process's mount, never a crashed one's,
 * and the next mount reaps what a crash left.
 */
class MountRecordsTest {
    @TempDir
    Path dir;

    @Test
    void aClaimIsLiveUntilClosedAndThenGone() throws IOException {
        MountRecords records = StoreDirectory.of(dir).mounts();
        long self = ProcessHandle.current().pid();
        try (Closeable claim = records.claim(Path.of("/mnt/images"))) {
            assertEquals(List.of(new MountRecords.MountRecord(Path.of("/mnt/images"), self)), records.live());
            assertEquals(java.util.Set.of(Path.of("/mnt/images")), records.roots());
        }
        assertEquals(List.of(), records.live(), "closed: the mount is over");
        assertFalse(Files.exists(dir.resolve(".vimgfs/mounts/" + self)), "its record file is removed");
    }

    @Test
    void anotherProcessesMountIsLiveWhileItRunsAndReapedAfterItIsKilled() throws Exception {
        Process daemon = claimer(dir, "/mnt/other").start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(daemon.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("claimed", out.readLine(), "the child claims a mount");
            MountRecords records = StoreDirectory.of(dir).mounts();
            assertEquals(List.of(new MountRecords.MountRecord(Path.of("/mnt/other"), daemon.pid())), records.live(),
                    "a live daemon's mount is listed, with its pid, after the daemon listed its own");

            daemon.destroyForcibly(); // SIGKILL: the record stays on disk, its lock goes with the process
            assertTrue(daemon.waitFor(30, TimeUnit.SECONDS));
            Path record = dir.resolve(".vimgfs/mounts/" + daemon.pid());
            assertTrue(Files.exists(record), "a killed daemon leaves its record");
            assertEquals(List.of(), records.live(), "but it is not listed as live");

            try (Closeable mine = records.claim(Path.of("/mnt/images"))) {
                assertFalse(Files.exists(record), "the next claim reaps it");
                assertEquals(1, records.live().size());
            }
        } finally {
            daemon.destroyForcibly();
        }
    }

    @Test
    void aRecordNoProcessHoldsIsNotLiveWhateverItsPidSays() throws IOException {
        Path mounts = Files.createDirectories(dir.resolve(".vimgfs/mounts"));
        long init = 1; // alive on every host: a pid test would call this record live
        Files.writeString(mounts.resolve(Long.toString(init)), "at /mnt/stale by pid " + init + "\n");
        assertEquals(List.of(), StoreDirectory.of(dir).mounts().live());
    }

    /** A child JVM that claims a mount of the store at {@code dir}, says so, and waits to be killed. */
    private static ProcessBuilder claimer(Path dir, String mountpoint) {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-XX:TieredStopAtLevel=1");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(Claimer.class.getName());
        command.add(dir.toString());
        command.add(mountpoint);
        return new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT);
    }

    /** The child's side of {@link #anotherProcessesMountIsLiveWhileItRunsAndReapedAfterItIsKilled}. */
    public static final class Claimer {
        public static void main(String[] args) throws Exception {
            MountRecords records = StoreDirectory.of(Path.of(args[0])).mounts();
            Closeable claim = records.claim(Path.of(args[1]));
            // the daemon asks for the live mounts itself (an overlay scan does): its own lock must survive that
            if (!records.roots().contains(Path.of(args[1])) || records.live().size() != 1) {
                throw new AssertionError("the claimer does not see its own mount: " + records.live());
            }
            System.out.println("claimed");
            System.out.flush();
            Thread.sleep(TimeUnit.MINUTES.toMillis(2));
            claim.close();
        }
    }
}
