package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Writers racing for one name, sharing one descriptor, or trying to exhaust the daemon, and
 * placements holding every FUSE thread (issue 8, items 2, 4, 5 and 7).
 */
class IncomingRacesTest {
    /**
     * How long one stat, ls or cmp may take while the mount is flooded or its placements wait: a
     * mount that stopped serving would hang far longer; each is a process start on a loaded 2-core machine.
     */
    private static final Duration PROMPT = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    @Test
    void twoWritersOfOneNameNeverPlaceABlobThatDiffersFromItsDigest() {
        Path a = Fixtures.small(dir, "a.raw", 4 << 20, 1);
        Path b = Fixtures.small(dir, "b.raw", 4 << 20, 2);
        String hexA = Fixtures.sha256(a);
        String hexB = Fixtures.sha256(b);
        try (MountedStore m = MountedStore.mount(dir)) {
            for (int round = 0; round < 8; round++) {
                String name = m.at("incoming/x:" + round);
                // cp A x & cp B x & wait: whichever open comes second finds the first's file. Here
                // the first writer is slowed so the second always opens it (O_TRUNC) mid-write.
                Shell.sh("python3 -c 'import sys, time\nsrc = open(sys.argv[1], \"rb\").read()\n"
                        + "with open(sys.argv[2], \"wb\") as out:\n    for i in range(0, len(src), 1 << 19):\n"
                        + "        out.write(src[i:i + (1 << 19)]); out.flush(); time.sleep(0.02)' '" + a + "' '" + name + "' & first=$!; "
                        + "while [ ! -e '" + name + "' ]; do sleep 0.01; done; cp '" + b + "' '" + name + "' && wait $first").ok();
                // and the plain form: both started at once (a second O_EXCL create may see EEXIST, a clean refusal)
                Shell.Result both = Shell.sh("cp '" + a + "' '" + name + "-2' & first=$!; cp '" + b + "' '" + name
                        + "-2' & second=$!; wait $first; r1=$?; wait $second; r2=$?; echo $r1 $r2");
                assertTrue(both.out().strip().equals("0 0") || both.err().contains("File exists"), both.toString());

                for (String tag : List.of(String.valueOf(round), round + "-2")) {
                    String placed = Shell.run("readlink", "-f", m.at("tags/x/" + tag)).ok().out().strip();
                    assertTrue(placed.endsWith(hexA) || placed.endsWith(hexB), "x:" + tag + " names A or B, not " + placed);
                }
                for (String hex : m.ls("by-digest/sha256")) {
                    assertEquals(hex, Shell.sha256(m.path("by-digest/sha256/" + hex)),
                            "round " + round + ": by-digest/sha256/" + hex + " holds other bytes than its name");
                }
            }
            assertEquals(List.of(), m.stagingFiles());
            assertEquals(List.of(), m.ls("incoming"));
        }
    }

    @Test
    void aSharedDescriptorPlacesTheWholeFileAndNoPart() throws IOException {
        Path p1 = Fixtures.small(dir, "p1", 3 << 20, 3);
        Path p2 = Fixtures.small(dir, "p2", 2 << 20, 4);
        Path whole = dir.resolve("whole");
        Files.write(whole, Files.readAllBytes(p1));
        Files.write(whole, Files.readAllBytes(p2), java.nio.file.StandardOpenOption.APPEND);
        String hex = Fixtures.sha256(whole);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.sh("(cat '" + p1 + "'; cat '" + p2 + "') > '" + m.at("incoming/x:1") + "'").ok();

            Shell.run("cmp", whole.toString(), m.at("tags/x/1")).ok();
            assertEquals(List.of(hex), m.ls("by-digest/sha256"), "the image of p1 alone is not left behind");
            assertEquals(List.of(), m.ls("incoming"));
            assertEquals(List.of(), m.stagingFiles());
            Shell.run("cp", whole.toString(), m.at("incoming/cp:1")).ok(); // and cp still places as before
            assertEquals(List.of(hex), m.ls("by-digest/sha256"));
        }
    }

    @Test
    void stagedFilesAndDirectoriesPastTheLimitAreRefusedWhileTheMountServes() throws Exception {
        Path image = Fixtures.small(dir, "img.raw", 1 << 20, 5);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", image.toString(), m.at("incoming/img:1")).ok();
            long pid = m.daemonPid();

            // 20,000 dot-files (each staged, never placed), then up to 300,000 directories; a
            // directory attempt stops after 5,000 refusals in a row to keep the test fast.
            Process flood = new ProcessBuilder("python3", "-c", """
                    import errno, os, sys, time
                    root = sys.argv[1]
                    def flood(make, count, give_up):
                        made = refused = 0
                        for i in range(count):
                            try:
                                make(i)
                                made += 1
                            except OSError as e:
                                if e.errno != errno.EDQUOT:
                                    return f"{made} {refused} {errno.errorcode.get(e.errno, e.errno)}"
                                refused += 1
                                if refused >= give_up:
                                    break
                        return f"{made} {refused} EDQUOT"
                    print(flood(lambda i: os.close(os.open(f"{root}/.f{i}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)),
                                20_000, 20_000), flush=True)
                    print(flood(lambda i: os.mkdir(f"{root}/d{i}"), 300_000, 5_000), flush=True)
                    """, m.at("incoming")).redirectErrorStream(true).start();
            List<String> report = new ArrayList<>();
            try {
                while (flood.isAlive()) {
                    assertServes(m, image);
                    MountedStore.sleep(200);
                }
                assertTrue(flood.waitFor(60, TimeUnit.SECONDS));
                report = new String(flood.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines().toList();
            } finally {
                flood.destroyForcibly();
            }
            assertEquals(List.of("1024 18976 EDQUOT", "10000 5000 EDQUOT"), report,
                    "made, refused, why: the limits hold and every refusal is EDQUOT\n" + m.log());
            assertServes(m, image);
            assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "the daemon is alive");
            String log = m.log();
            assertEquals(1, log.lines().filter(l -> l.contains("staged uploads, its limit")).count(), log);
            assertEquals(1, log.lines().filter(l -> l.contains("directories, its limit")).count(), log);
        }
    }

    /** stat, ls and reading an image all answer. */
    private static void assertServes(MountedStore m, Path image) {
        Shell.run(PROMPT, Map.of(), List.of("stat", m.at("tags/img/1"))).ok();
        Shell.run(PROMPT, Map.of(), List.of("ls", m.at("tags/img"))).ok();
        Shell.run(PROMPT, Map.of(), List.of("cmp", image.toString(), m.at("tags/img/1"))).ok();
    }

    @Test
    void statAnswersWhilePlacementsHoldMoreThreadsThanTheMountStartsWith() throws Exception {
        int uploads = 12; // more than the 8 threads a mount starts with
        List<Path> sources = new ArrayList<>();
        for (int i = 0; i < uploads; i++) {
            sources.add(Fixtures.small(dir, "s" + i, 256 * 1024, 100 + i));
        }
        try (MountedStore m = MountedStore.mount(dir)) {
            // `vimgfs gc` or another writer holding the store lock: each placement waits in its flush.
            Process holder = new ProcessBuilder("python3", "-c",
                    "import fcntl, sys\nf = open(sys.argv[1], 'a')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()",
                    m.store.resolve(".vimgfs/lock").toString()).start();
            List<Process> cps = new ArrayList<>();
            try {
                assertEquals("locked", new BufferedReader(new InputStreamReader(holder.getInputStream())).readLine());
                for (int i = 0; i < uploads; i++) {
                    cps.add(Shell.spawn("cp", sources.get(i).toString(), m.at("incoming/held:" + i)));
                }
                Eventually.within(Duration.ofSeconds(30), "every cp waits in close(2)",
                        () -> cps.stream().allMatch(IncomingRacesTest::inClose));

                long worst = 0;
                for (int i = 0; i < 20; i++) {
                    long start = System.nanoTime();
                    // a fresh name each time: the kernel has no cached answer, the daemon must give one
                    Shell.Result stat = Shell.run(PROMPT, Map.of(), List.of("stat", m.at("incoming/nothing-" + i)));
                    worst = Math.max(worst, System.nanoTime() - start);
                    assertEquals(1, stat.exit(), "stat of a missing name answers ENOENT: " + stat.err());
                }
                Shell.run(PROMPT, Map.of(), List.of("ls", m.at("incoming"))).ok();
                System.out.printf("worst stat latency with %d placements waiting: %.1f ms%n", uploads, worst / 1e6);
            } finally {
                holder.getOutputStream().close(); // releases the lock
                holder.waitFor(10, TimeUnit.SECONDS);
                holder.destroyForcibly();
            }
            for (Process cp : cps) {
                assertTrue(cp.waitFor(60, TimeUnit.SECONDS), "cp finished once the lock was released");
                assertEquals(0, cp.exitValue());
            }
            assertEquals(uploads, m.ls("by-digest/sha256").size());
        }
    }

    /** Whether the process is inside close(2) (syscall 3 on x86-64), i.e. waiting for its flush. */
    private static boolean inClose(Process process) {
        try {
            String syscall = Files.readString(Path.of("/proc/" + process.pid() + "/syscall")).strip();
            return syscall.startsWith("3 ");
        } catch (IOException e) {
            return false;
        }
    }
}
