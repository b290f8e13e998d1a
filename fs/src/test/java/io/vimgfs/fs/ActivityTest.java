package io.vimgfs.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line's runs as status and the metrics see them: a transfer's bytes so far while it
 * runs, how it ended, a run whose process died counted as killed, each run counted once, and a
 * torn file (a crash while writing it) skipped without harm.
 */
class ActivityTest {
    @TempDir
    Path store;

    @Test
    void aTransferShowsItsBytesWhileRunningAndHowItEnded() {
        Activity pull = Activity.start(store, "pull", "docker://127.0.0.1:5000/vm/disk:1");
        pull.alongside(io.vimgfs.store.registry.TransferProgress.NONE).begin("disk", 3000);
        pull.advance(1000); // within the update interval of the start: not yet on disk
        pull.succeeded(0, -1);
        Activity.Run run = only(Activity.read(store));
        assertEquals(Activity.State.OK, run.state());
        assertEquals(1000, run.bytes());
        assertEquals(3000, run.totalBytes());
        assertEquals("docker://127.0.0.1:5000/vm/disk:1", run.subject());
        assertEquals(ProcessHandle.current().pid(), run.pid());

        try (Activity push = Activity.start(store, "push", "docker://127.0.0.1:5000/vm/disk:2")) {
            push.advance(10);
            assertEquals(Activity.State.RUNNING, Activity.read(store).get(1).state(), "running until it says otherwise");
        }
        Activity.Run closed = Activity.read(store).get(1);
        assertEquals(Activity.State.FAILED, closed.state(), "closed without succeeding: failed");
        assertEquals("ended without finishing", closed.error());
    }

    @Test
    void theMountCountsEachEndedRunOnceAndADeadRunnerAsKilled() throws Exception {
        Metrics metrics = Metrics.process();
        double okBefore = counter(metrics, "vimgfs_pulls", "result", "ok");
        double killedBefore = counter(metrics, "vimgfs_pulls", "result", "killed");
        double gcBefore = counter(metrics, "vimgfs_gc_freed_bytes", "origin", "command");
        Activity ok = Activity.start(store, "pull", "http://127.0.0.1/a.qcow2");
        ok.advance(5);
        ok.succeeded(0, -1);
        Activity.finished(store, "gc", "", 2, 4096);
        Process dead = new ProcessBuilder("true").start();
        dead.waitFor();
        Files.writeString(Activity.directory(store).resolve(dead.pid() + "-1-pull.json"), "{\"id\":\"" + dead.pid()
                + "-1-pull\",\"verb\":\"pull\",\"subject\":\"http://127.0.0.1/b\",\"pid\":" + dead.pid() + ",\"command\":\"x\","
                + "\"startedMillis\":" + System.currentTimeMillis() + ",\"updatedMillis\":" + System.currentTimeMillis()
                + ",\"state\":\"RUNNING\",\"bytes\":7,\"totalBytes\":-1,\"files\":0}");
        Files.writeString(Activity.directory(store).resolve("1-2-pull.json"), "{\"id\":\"1-2-pu"); // torn by a crash

        metrics.countActivity(Activity.read(store));
        metrics.countActivity(Activity.read(store)); // the next look: nothing counted twice

        assertEquals(okBefore + 1, counter(metrics, "vimgfs_pulls", "result", "ok"));
        assertEquals(killedBefore + 1, counter(metrics, "vimgfs_pulls", "result", "killed"));
        assertEquals(gcBefore + 4096, counter(metrics, "vimgfs_gc_freed_bytes", "origin", "command"));
        assertEquals(3, Activity.read(store).size(), "the torn file is skipped");
    }

    @Test
    void endedRunsGoAfterTenMinutesAndRunningOnesStay() throws Exception {
        Activity.finished(store, "gc", "", 0, 0);
        try (Activity running = Activity.start(store, "pull", "http://127.0.0.1/slow")) {
            for (Path file : Files.list(Activity.directory(store)).toList()) {
                String old = Files.readString(file).replaceAll("\"updatedMillis\":[0-9]+",
                        "\"updatedMillis\":" + (System.currentTimeMillis() - Activity.KEEP_MILLIS - 1000));
                Files.writeString(file, old);
                Files.setLastModifiedTime(file, FileTime.from(Instant.now().minusSeconds(3600)));
            }
            Activity.removeExpired(store);
            List<Activity.Run> left = Activity.read(store);
            assertEquals(1, left.size(), left.toString());
            assertEquals("pull", left.get(0).verb());
            assertFalse(left.get(0).orphaned());
            assertTrue(left.get(0).state() == Activity.State.RUNNING);
            running.succeeded(0, -1);
        }
    }

    private static Activity.Run only(List<Activity.Run> runs) {
        assertEquals(1, runs.size(), runs.toString());
        return runs.get(0);
    }

    private static double counter(Metrics metrics, String name, String label, String value) {
        for (MetricSnapshot snapshot : metrics.registry().scrape()) {
            if (snapshot instanceof CounterSnapshot counter && snapshot.getMetadata().getName().equals(name)) {
                for (CounterSnapshot.CounterDataPointSnapshot point : counter.getDataPoints()) {
                    if (point.getLabels().equals(Labels.of(label, value))) {
                        return point.getValue();
                    }
                }
            }
        }
        return 0;
    }
}
