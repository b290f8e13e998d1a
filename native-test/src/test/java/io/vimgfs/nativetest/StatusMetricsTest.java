package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An operator watching a host: Prometheus scrapes {@code -o metrics=127.0.0.1:PORT} over loopback
 * and the numbers move when {@code cp}, {@code ls} and {@code rm} happen; {@code vimgfs status}
 * and {@code status --json} describe the mount, the store without a mount, and a daemon stopped
 * with SIGSTOP (answered within seconds, saying the daemon does not answer).
 */
class StatusMetricsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void scrapedNumbersMoveAndStatusDescribesTheMount() throws Exception {
        Path image = dir.resolve("disk.raw");
        Files.write(image, new byte[3 << 20]);
        int[] served = new int[1];
        try (MountedStore m = mountWithMetrics(served)) {
            int port = served[0];
            Map<String, Double> before = Scrape.metrics(port);
            assertTrue(before.containsKey("jvm_memory_used_bytes{area=\"heap\"}"), "the JVM's own metrics are there: " + before.keySet());

            Shell.run("cp", image.toString(), m.at("incoming/app:1.0")).ok();
            Files.write(image, new byte[] {1, 2, 3}, java.nio.file.StandardOpenOption.APPEND);
            Shell.run("cp", image.toString(), m.at("incoming/app:2.0")).ok();
            Shell.run("ls", "-l", m.at("tags/app")).ok();
            Shell.run("rm", m.at("tags/app/1.0")).ok();
            Shell.run("touch", m.at("by-name/nothing-here")).failed(); // EROFS: a last error to show
            Map<String, Double> after = Scrape.metrics(port);

            assertTrue(Scrape.sum(after, "vimgfs_placements_total") >= Scrape.sum(before, "vimgfs_placements_total") + 2, "placements moved");
            assertTrue(Scrape.sum(after, "vimgfs_written_bytes_total") >= Scrape.sum(before, "vimgfs_written_bytes_total") + (6 << 20), "bytes written moved");
            assertTrue(Scrape.sum(after, "vimgfs_fuse_requests_total{operation=\"readdir\"") > Scrape.sum(before, "vimgfs_fuse_requests_total{operation=\"readdir\""),
                    "ls counted: " + after);
            assertTrue(Scrape.sum(after, "vimgfs_fuse_request_duration_seconds_count{operation=\"write\"") > 0, "latency histogram has the writes");
            assertEquals(1.0, Scrape.sum(after, "vimgfs_catalog_images"), "catalog size: two placed, one removed with its last name");
            assertTrue(Scrape.sum(after, "vimgfs_fuse_requests_total{operation=\"unlink\",result=\"ok\"") >= 1, "rm counted");

            Shell.Result text = Shell.vimgfs(m.store, "status");
            assertEquals(0, text.exit(), text.err());
            assertTrue(text.out().contains("mount " + m.mountpoint + " (pid " + m.daemonPid() + ")"), text.out());
            assertTrue(text.out().contains("daemon answers"), text.out());
            assertTrue(text.out().contains("metrics: http://127.0.0.1:" + port + "/metrics"), text.out());
            assertTrue(text.out().contains("placed 2 upload(s)"), text.out());
            assertTrue(text.out().contains("EROFS"), "the last errors show the refused touch\n" + text.out());

            JsonNode json = JSON.readTree(Shell.vimgfs(m.store, "status", "--json").ok().out());
            JsonNode mount = json.path("mounts").get(0);
            assertEquals("answers", mount.path("daemon").asText());
            assertEquals("link", mount.path("report").path("dataMode").asText());
            double jsonPlacements = 0;
            for (JsonNode point : mount.path("report").path("metrics").path("vimgfs_placements_total")) {
                jsonPlacements += point.path("value").asDouble();
            }
            assertEquals(Scrape.sum(Scrape.metrics(port), "vimgfs_placements_total"), jsonPlacements, "status --json has the same numbers");
            assertTrue(Shell.vimgfsRaw("status", m.mountpoint.toString()).out().contains("store " + m.store.toAbsolutePath().normalize()),
                    "status MOUNTPOINT finds the store");

            long pid = m.daemonPid();
            Shell.run("kill", "-STOP", Long.toString(pid)).ok();
            try {
                long start = System.nanoTime();
                Shell.Result stopped = Shell.run(Duration.ofSeconds(60), Map.of(), java.util.List.of(Shell.java(), "-jar",
                        Shell.jar().toString(), "--store", m.store.toString(), "status"));
                long millis = (System.nanoTime() - start) / 1_000_000;
                assertEquals(1, stopped.exit(), stopped.out() + stopped.err());
                assertTrue(stopped.out().contains("DAEMON DOES NOT ANSWER"), stopped.out());
                assertTrue(stopped.out().contains("stopped (SIGSTOP"), stopped.out());
                assertTrue(stopped.out().contains("images: 1 "), "the store's part still comes\n" + stopped.out());
                // the default 3 s timeout plus a JVM start, which on a loaded 2-core machine takes
                // several seconds: a status that waited for the stopped daemon would take the 60 s above
                assertTrue(millis < 20_000, "status answered in " + millis + " ms");
                JsonNode stoppedJson = JSON.readTree(Shell.vimgfs(m.store, "status", "--json").out());
                assertEquals("does not answer", stoppedJson.path("mounts").get(0).path("daemon").asText());
            } finally {
                Shell.run("kill", "-CONT", Long.toString(pid)).ok();
            }
            // a daemon just continued may need a moment (and the 3 s timeout is short on a loaded machine)
            Eventually.within(Duration.ofSeconds(30), "answers again after SIGCONT", () -> Shell.vimgfs(m.store, "status").exit() == 0);
        }
        Shell.Result unmounted = Shell.vimgfs(dir.resolve("store"), "status");
        assertEquals(0, unmounted.exit(), unmounted.err());
        assertTrue(unmounted.out().contains("not mounted"), unmounted.out());
        assertTrue(unmounted.out().contains("images: 1 "), unmounted.out());
    }

    /**
     * Mounts with {@code -o metrics=PORT} on a port that was free a moment ago. Another process
     * on this shared machine may take it in between, which fails the mount ("cannot serve
     * metrics"): then another port is tried.
     */
    private MountedStore mountWithMetrics(int[] served) throws IOException {
        for (int attempt = 1; ; attempt++) {
            int port = freePort();
            try {
                MountedStore m = MountedStore.mount(dir, "metrics=" + port);
                served[0] = port;
                return m;
            } catch (AssertionError e) {
                if (attempt >= 5 || !String.valueOf(e.getMessage()).contains("cannot serve metrics")) {
                    throw e;
                }
            }
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
