package io.vimgfs.fs;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.DataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Label;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.SummarySnapshot;
import io.prometheus.metrics.model.snapshots.UnknownSnapshot;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * What a live mount tells {@code vimgfs status} about itself: where and how it is mounted, since
 * when, the uploads in {@code incoming/} with their bytes so far, the last errors it answered,
 * and every number of its {@link Metrics} registry (the same ones {@code /metrics} serves).
 */
final class DaemonReport {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Deep enough for any upload a person makes; bounds a pathological tree. */
    private static final int INCOMING_DEPTH = 8;

    private final Path mountpoint;
    private final MountRequest request;
    private final VimgFs fs;
    private final Metrics metrics;
    private final Instant started;
    private volatile Optional<String> metricsUrl = Optional.empty();

    DaemonReport(Path mountpoint, MountRequest request, VimgFs fs, Metrics metrics, Instant started) {
        this.mountpoint = mountpoint;
        this.request = request;
        this.fs = fs;
        this.metrics = metrics;
        this.started = started;
    }

    void metricsServedAt(String url) {
        metricsUrl = Optional.of(url);
    }

    String json() {
        ObjectNode report = JSON.createObjectNode();
        report.put("pid", ProcessHandle.current().pid());
        report.put("mountpoint", mountpoint.toString());
        report.put("started", started.toString());
        report.put("uptimeSeconds", Duration.between(started, Instant.now()).toSeconds());
        report.put("dataMode", fs.mode().name().toLowerCase(java.util.Locale.ROOT));
        ArrayNode options = report.putArray("options");
        request.options().forEach(options::add);
        report.put("metricsUrl", metricsUrl.orElse(null));
        report.put("openHandles", fs.openFiles());
        ArrayNode uploads = report.putArray("uploads");
        incoming(ImageTree.INCOMING, 0, uploads);
        ArrayNode errors = report.putArray("recentErrors");
        for (Metrics.RecentError error : metrics.recentErrors()) {
            errors.addObject().put("time", error.time().toString()).put("operation", error.operation())
                    .put("path", error.path()).put("errno", error.errno());
        }
        ArrayNode lazy = report.putArray("lazyPulls");
        for (io.vimgfs.store.registry.LazyDisk.Stats disk : metrics.lazyPulls()) {
            lazy.addObject().put("digest", disk.layer().toString()).put("size", disk.size())
                    .put("presentBytes", disk.bytesHere()).put("fetchedPercent", Math.floor(disk.fetchedPercent() * 10) / 10)
                    .put("onDemandBytes", disk.onDemand()).put("backgroundBytes", disk.background())
                    .put("chunkFailures", disk.failures()).put("placed", disk.placed());
        }
        report.set("metrics", metricsJson(metrics));
        return report.toString();
    }

    private void incoming(String dir, int depth, ArrayNode uploads) {
        try {
            for (String entry : fs.readdir(dir)) {
                String path = dir + "/" + entry;
                Attr attr = fs.getattr(path);
                if (attr.kind() == Attr.Kind.DIRECTORY && depth < INCOMING_DEPTH) {
                    incoming(path, depth + 1, uploads);
                } else if (attr.kind() == Attr.Kind.FILE) {
                    uploads.addObject().put("path", path.substring(1)).put("bytes", attr.size())
                            .put("modified", attr.modified().toString());
                }
            }
        } catch (FsException e) {
            // an upload placed or removed while we listed: it is no longer in flight
        }
    }

    /** The registry as JSON: each metric by its exposition name, each data point with its labels. */
    static ObjectNode metricsJson(Metrics metrics) {
        ObjectNode all = JSON.createObjectNode();
        for (MetricSnapshot snapshot : metrics.registry().scrape()) {
            String name = snapshot.getMetadata().getPrometheusName() + (snapshot instanceof CounterSnapshot ? "_total" : "");
            ArrayNode points = all.putArray(name);
            for (DataPointSnapshot point : snapshot.getDataPoints()) {
                ObjectNode out = points.addObject();
                ObjectNode labels = out.putObject("labels");
                for (Label label : point.getLabels()) {
                    labels.put(label.getName(), label.getValue());
                }
                values(point, out);
            }
        }
        return all;
    }

    private static void values(DataPointSnapshot point, ObjectNode out) {
        if (point instanceof CounterSnapshot.CounterDataPointSnapshot counter) {
            out.put("value", counter.getValue());
        } else if (point instanceof GaugeSnapshot.GaugeDataPointSnapshot gauge) {
            out.put("value", gauge.getValue());
        } else if (point instanceof UnknownSnapshot.UnknownDataPointSnapshot unknown) {
            out.put("value", unknown.getValue());
        } else if (point instanceof HistogramSnapshot.HistogramDataPointSnapshot histogram) {
            out.put("count", histogram.getCount()).put("sum", histogram.getSum());
        } else if (point instanceof SummarySnapshot.SummaryDataPointSnapshot summary) {
            out.put("count", summary.getCount()).put("sum", summary.getSum());
        }
    }

}
