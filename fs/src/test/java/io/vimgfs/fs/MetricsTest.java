package io.vimgfs.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.prometheus.metrics.config.EscapingScheme;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.vimgfs.store.ImageStore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon's numbers move when work happens: requests by operation and errno, bytes written,
 * placements and refusals by reason, the catalog's size; and the JSON status prints is the same
 * registry. The registry is the process's, so each test compares before and after.
 */
class MetricsTest {
    private final Metrics metrics = Metrics.process();

    @TempDir
    Path dir;

    @Test
    void requestsAreCountedByOperationAndErrnoWithTheirLatency() {
        double okBefore = value("vimgfs_fuse_requests_total", "operation", "getattr", "result", "ok");
        double failedBefore = value("vimgfs_fuse_requests_total", "operation", "unlink", "result", "EROFS");
        metrics.request("getattr", System.nanoTime(), 0, null, "/tags");
        metrics.request("getattr", System.nanoTime(), 0, null, "/tags");
        metrics.request("unlink", System.nanoTime(), -30, Errno.EROFS, "/by-digest/sha256/ab");
        assertEquals(okBefore + 2, value("vimgfs_fuse_requests_total", "operation", "getattr", "result", "ok"));
        assertEquals(failedBefore + 1, value("vimgfs_fuse_requests_total", "operation", "unlink", "result", "EROFS"));
        Metrics.RecentError last = metrics.recentErrors().get(metrics.recentErrors().size() - 1);
        assertEquals(List.of("unlink", "/by-digest/sha256/ab", "EROFS"), List.of(last.operation(), last.path(), last.errno()));
        String text = exposition();
        assertTrue(text.lines().anyMatch(l -> l.startsWith("vimgfs_fuse_request_duration_seconds_count{")
                && l.contains("operation=\"getattr\"")), text);
        assertTrue(text.contains("# TYPE vimgfs_fuse_requests_total counter"), text);
    }

    @Test
    void anAbsentNameIsCountedButNotAnErrorWorthShowing() {
        int before = metrics.recentErrors().size();
        metrics.request("getattr", System.nanoTime(), -2, Errno.ENOENT, "/tags/none");
        assertTrue(metrics.recentErrors().size() <= before || !metrics.recentErrors().get(metrics.recentErrors().size() - 1)
                .path().equals("/tags/none"));
    }

    @Test
    void uploadsMoveBytesPlacementsAndTheCatalog() throws Exception {
        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            VimgFs fs = new VimgFs(store, Clock.systemUTC(), DataMode.LINK);
            metrics.watch(store, fs);
            try {
                double placed = value("vimgfs_placements_total");
                double refused = value("vimgfs_refusals_total");
                byte[] image = "not really a disk, but raw images are any bytes".getBytes(StandardCharsets.UTF_8);
                cp(fs, image, "app:1.0");
                // a qcow2 magic on a header too short to be one: the probe refuses it at close
                cp(fs, new byte[] {'Q', 'F', 'I', (byte) 0xfb, 0, 0, 0, 3}, "broken:1");
                assertEquals(placed + 1, value("vimgfs_placements_total"));
                assertEquals(refused + 1, value("vimgfs_refusals_total"), exposition());
                assertEquals(1, value("vimgfs_catalog_images"));
                assertEquals(image.length, value("vimgfs_catalog_bytes"));
            } finally {
                metrics.unwatch();
                fs.close();
            }
        }
    }

    @Test
    void aBarePortListensOnLoopbackOnly() {
        MountRequest bare = new MountRequest(Path.of("s"), Path.of("m"), List.of("metrics=9477"), false);
        assertEquals("127.0.0.1", bare.metricsAddress().orElseThrow().getHostString());
        assertEquals(9477, bare.metricsAddress().orElseThrow().getPort());
        MountRequest any = new MountRequest(Path.of("s"), Path.of("m"), List.of("metrics=0.0.0.0:9100"), false);
        assertEquals("0.0.0.0", any.metricsAddress().orElseThrow().getHostString());
        assertTrue(new MountRequest(Path.of("s"), Path.of("m"), List.of(), false).metricsAddress().isEmpty(), "off by default");
        assertTrue(bare.fuseOptions().stream().noneMatch(o -> o.startsWith("metrics")), "libfuse never sees it");
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> new MountRequest(Path.of("s"), Path.of("m"), List.of("metrics=localhost"), false));
        assertTrue(bad.getMessage().contains("-o metrics=localhost"), bad.getMessage());
    }

    private static void cp(VimgFs fs, byte[] content, String name) throws Exception {
        long handle = fs.create("/incoming/" + name).handle();
        fs.write(handle, ByteBuffer.wrap(content), 0);
        try {
            fs.flush(handle);
        } catch (FsException refused) {
            // a refused upload reports its errno at close, as cp would see it
        } finally {
            fs.release(handle);
        }
    }

    private String exposition() {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            PrometheusTextFormatWriter.create().write(out, metrics.registry().scrape(), EscapingScheme.DEFAULT);
            return out.toString(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** The JSON status shows, summed over the points whose labels match. */
    private double value(String name, String... labels) {
        double sum = 0;
        for (JsonNode point : DaemonReport.metricsJson(metrics).path(name)) {
            boolean matches = true;
            for (int i = 0; i < labels.length; i += 2) {
                matches &= point.path("labels").path(labels[i]).asText().equals(labels[i + 1]);
            }
            sum += matches ? point.path("value").asDouble() : 0;
        }
        return sum;
    }
}
