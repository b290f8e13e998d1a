package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mount command (SPEC §8): refusals with a clear message and a non-zero exit, and clean unmounts. */
class MountCommandTest {
    /** SIGTERM ends the daemon within about 5 s (README); a JVM's exit on a loaded 2-core machine adds seconds. */
    private static final Duration UNMOUNT_LIMIT = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    /**
     * A store may be mounted again while a daemon still serves it: libvirt's own mount namespace
     * keeps an old daemon alive after fusermount -u, and the new mount must not wait for it.
     */
    @Test
    void aSecondMountOfTheSameStoreWorksAndBothSeeEveryChange() throws IOException {
        Path source = Fixtures.small(dir, "img.raw", 40_000, 31);
        Path other = Fixtures.small(dir, "other.raw", 40_000, 34);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/img:1")).ok();
            Path second = Files.createDirectories(dir.resolve("second"));
            try {
                Shell.vimgfsRaw(m.store.toString(), second.toString()).ok();
                Shell.run("cp", other.toString(), second.resolve("incoming/other:1").toString()).ok();

                assertEquals(List.of("img", "other"), Shell.run("ls", second.resolve("tags").toString()).ok().out().lines().toList());
                // the first notices another process's commit within a second (its 500 ms refresh); wider for a loaded machine
                Eventually.within(Duration.ofSeconds(10), "the first mount sees the second's placement",
                        () -> m.ls("tags").equals(List.of("img", "other")));
                assertEquals(Fixtures.sha256(other), Shell.sha256(m.path("tags/other/1")));
            } finally {
                long secondPid = MountedStore.daemonPid(m.store, second);
                Shell.run(Duration.ofSeconds(30), Map.of(), List.of("fusermount", "-u", second.toString()));
                Eventually.within(UNMOUNT_LIMIT, "the second daemon lets go of the store",
                        () -> Shell.run("grep", "-rqs", "at " + second + " by", m.store.resolve(".vimgfs/mounts").toString()).exit() != 0);
                // its record goes before it closes the store (and rewrites index.json): wait for the
                // process, or it may still write while the first unmounts and JUnit deletes the directory
                MountedStore.awaitExit(secondPid);
            }
            assertTrue(m.isMounted(), "unmounting the second leaves the first");
        }
    }

    @Test
    void mountingOnABusyNonEmptyOrMissingDirectoryFailsWithAReason() throws IOException {
        Path store = dir.resolve("store");
        Path full = Files.createDirectories(dir.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "mine");
        Path missing = dir.resolve("missing");
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.Result busy = Shell.vimgfsRaw(dir.resolve("other-store").toString(), m.mountpoint.toString());
            Shell.Result nonEmpty = Shell.vimgfsRaw(store.toString(), full.toString());
            Shell.Result absent = Shell.vimgfsRaw(store.toString(), missing.toString());
            assertAll(
                    () -> assertFailed(busy, "busy"),
                    () -> assertFailed(nonEmpty, "not empty"),
                    () -> assertFailed(absent, "does not exist"),
                    () -> assertEquals("mine", Files.readString(full.resolve("keep.txt"))),
                    () -> assertFalse(Files.exists(missing), "a missing mountpoint is not created behind the user's back"),
                    () -> assertTrue(m.isMounted()));
        }
    }

    /** The refusal names the store the user gave, not the default one. */
    @Test
    void aRefusalNamesTheStoreThatWasGiven() throws IOException {
        Path full = Files.createDirectories(dir.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "mine");

        Shell.Result result = Shell.vimgfsRaw(dir.resolve("store").toString(), full.toString());

        assertFailed(result, "not empty");
        assertFalse(result.err().contains("/var/lib/vimgfs"),
                "the message blames the default store although " + dir.resolve("store") + " was given: " + result.err());
    }

    @Test
    void fusermountUnmountsCleanlyAndARemountShowsEverything() {
        Path source = Fixtures.small(dir, "img.raw", 40_000, 32);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/img:1")).ok();
            long pid = m.daemonPid();

            Shell.run("fusermount", "-u", m.mountpoint.toString()).ok();

            assertFalse(m.isMounted());
            Eventually.within(UNMOUNT_LIMIT, "the daemon exits after fusermount -u", () -> !alive(pid));
            assertTrue(m.log().contains("unmounted " + m.mountpoint), m.log());
            m.start();
            assertEquals(List.of(hex), m.ls("by-digest/sha256"));
            assertEquals(List.of("1"), m.ls("tags/img"));
        }
    }

    @Test
    void sigtermToTheDaemonUnmountsCleanlyAndAStagedUploadIsCleanedAtTheNextMount() {
        Path source = Fixtures.small(dir, "img.raw", 40_000, 33);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/img:1")).ok();
            Shell.run("cp", source.toString(), m.at("incoming/.half-done")).ok();
            long pid = m.daemonPid();
            assertTrue(pid > 0, "mount.lock names the daemon's pid");

            Shell.run("kill", "-TERM", Long.toString(pid)).ok();

            Eventually.within(UNMOUNT_LIMIT, "SIGTERM unmounts", () -> !m.isMounted());
            Eventually.within(UNMOUNT_LIMIT, "the daemon exits after SIGTERM", () -> !alive(pid));
            assertTrue(m.log().contains("stopping: unmounted " + m.mountpoint) && m.log().contains("unmounted " + m.mountpoint + "\n"),
                    "the log says the daemon unmounted, although the JVM was shutting down: " + m.log());
            assertEquals(List.of(), Shell.run("ls", "-A", m.mountpoint.toString()).ok().out().lines().toList(),
                    "the mountpoint is an empty directory again");
            m.start();
            assertEquals(List.of(hex), m.ls("by-digest/sha256"), "nothing placed is lost");
            assertEquals(List.of("1"), m.ls("tags/img"));
            assertEquals(List.of(), m.ls("incoming"));
            assertEquals(List.of(), m.stagingFiles(), "the staged dot-file is cleaned at the next mount");
        }
    }

    private static void assertFailed(Shell.Result result, String reason) {
        assertNotEquals(0, result.exit(), "exit code of " + String.join(" ", result.command()));
        assertTrue(result.err().contains(reason), "the message says \"" + reason + "\": " + result.err());
    }

    private static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }
}
