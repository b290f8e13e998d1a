package io.vimgfs.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code vimgfs status} for people: the JSON that {@code --json} prints, laid out in one screen,
 * so that both forms always say the same thing.
 */
final class StatusText {
    private static final int TOP_OPERATIONS = 6;

    private StatusText() {
    }

    static void print(JsonNode status, PrintWriter out) {
        out.println("store " + status.path("store").asText());
        Map<String, String> names = names(status.path("images"));
        JsonNode mounts = status.path("mounts");
        if (mounts.isEmpty()) {
            out.println("  not mounted");
        }
        for (JsonNode mount : mounts) {
            mount(mount, out);
        }
        images(status.path("images"), out);
        JsonNode inUse = status.path("inUse");
        out.println("images in use: " + (inUse.isEmpty() ? "none" : inUse.size() + " (image, pid, command)"));
        for (JsonNode user : inUse) {
            String digest = user.path("digest").asText();
            out.printf("  %s %s  pid %d  %s%n", digest.substring(0, Math.min(19, digest.length())),
                    names.getOrDefault(digest, "(no name)"), user.path("pid").asLong(), shorten(user.path("command").asText(), 100));
        }
        activity(status.path("activity"), out);
    }

    private static void activity(JsonNode runs, PrintWriter out) {
        List<JsonNode> running = new ArrayList<>();
        List<JsonNode> ended = new ArrayList<>();
        runs.forEach(run -> (run.path("state").asText().equals("running") ? running : ended).add(run));
        out.println("pulls and pushes in flight: " + (running.isEmpty() ? "none" : running.size()));
        for (JsonNode run : running) {
            long total = run.path("totalBytes").asLong();
            out.printf("  %s %s: %s%s at %s/s (pid %d, since %s)%n", run.path("verb").asText(), run.path("subject").asText(),
                    ByteSizes.format(run.path("bytes").asLong()), total < 0 ? "" : " of " + ByteSizes.format(total),
                    ByteSizes.format(run.path("bytesPerSecond").asLong()), run.path("pid").asLong(), run.path("started").asText());
        }
        if (!ended.isEmpty()) {
            out.println("recent runs (pull, push, gc, prune; the last 10 minutes):");
        }
        for (JsonNode run : ended) {
            String verb = run.path("verb").asText();
            String what = switch (verb) {
                case "gc" -> "freed " + run.path("files").asLong() + " file(s), " + ByteSizes.format(run.path("bytes").asLong());
                case "prune" -> "removed " + run.path("files").asLong() + " image(s), " + ByteSizes.format(run.path("bytes").asLong());
                default -> ByteSizes.format(run.path("bytes").asLong()) + " transferred";
            };
            out.printf("  %s %-6s %s%s: %s%s%n", run.path("updated").asText(), run.path("state").asText(), verb,
                    run.path("subject").asText().isEmpty() ? "" : " " + run.path("subject").asText(), what,
                    run.has("error") ? " — " + run.path("error").asText() : "");
        }
    }

    private static void mount(JsonNode mount, PrintWriter out) {
        out.printf("mount %s (pid %d)%s%n", mount.path("mountpoint").asText(), mount.path("pid").asLong(),
                mount.path("mounted").asBoolean() ? "" : " — not in this namespace's mount table (unmounted lazily, still serving open files?)");
        String daemon = mount.path("daemon").asText();
        if (daemon.equals("does not answer")) {
            out.printf("  DAEMON DOES NOT ANSWER within %.1f s: %s%n", mount.path("waitedMillis").asLong() / 1000.0,
                    mount.path("processState").asText());
            out.println("  (new lookups in the mount wait for it; images already open keep reading from the store)");
            return;
        }
        if (daemon.equals("no status socket")) {
            out.println("  daemon has no status socket: " + mount.path("why").asText());
            return;
        }
        JsonNode report = mount.path("report");
        JsonNode metrics = report.path("metrics");
        List<String> options = new ArrayList<>();
        report.path("options").forEach(o -> options.add(o.asText()));
        out.printf("  daemon answers (%d ms); up %s; data=%s; options %s%n", mount.path("answeredMillis").asLong(),
                uptime(report.path("uptimeSeconds").asLong()), report.path("dataMode").asText(),
                options.isEmpty() ? "(none)" : String.join(",", options));
        out.println("  metrics: " + (report.path("metricsUrl").isTextual() ? report.path("metricsUrl").asText() : "off (-o metrics=PORT)"));
        Map<String, Double> byOperation = new HashMap<>();
        double failed = 0;
        for (JsonNode point : metrics.path("vimgfs_fuse_requests_total")) {
            double value = point.path("value").asDouble();
            byOperation.merge(point.path("labels").path("operation").asText(), value, Double::sum);
            if (!point.path("labels").path("result").asText().equals("ok")) {
                failed += value;
            }
        }
        double total = byOperation.values().stream().mapToDouble(Double::doubleValue).sum();
        List<String> top = byOperation.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue(Comparator.reverseOrder()))
                .limit(TOP_OPERATIONS).map(e -> e.getKey() + " " + (long) (double) e.getValue()).toList();
        out.printf("  requests %d (%d failed): %s%n", (long) total, (long) failed, String.join(", ", top));
        out.printf("  through the daemon: read %s, written %s; open handles %d%n", ByteSizes.format((long) value(metrics, "vimgfs_read_bytes_total")),
                ByteSizes.format((long) value(metrics, "vimgfs_written_bytes_total")), report.path("openHandles").asLong());
        double refused = 0;
        List<String> reasons = new ArrayList<>();
        for (JsonNode point : metrics.path("vimgfs_refusals_total")) {
            refused += point.path("value").asDouble();
            reasons.add(point.path("labels").path("reason").asText() + " " + (long) point.path("value").asDouble());
        }
        out.printf("  placed %d upload(s), %s; refused %d%s%n", (long) value(metrics, "vimgfs_placements_total"),
                ByteSizes.format((long) value(metrics, "vimgfs_placed_bytes_total")), (long) refused,
                reasons.isEmpty() ? "" : " (" + String.join(", ", reasons) + ")");
        JsonNode uploads = mount.has("uploads") ? mount.path("uploads") : report.path("uploads");
        out.println("  uploads in incoming/: " + (uploads.isEmpty() ? "none" : uploads.size()));
        for (JsonNode upload : uploads) {
            out.printf("    %s %s%s%n", upload.path("path").asText(), ByteSizes.format(upload.path("bytes").asLong()),
                    upload.has("bytesPerSecond") ? ", " + ByteSizes.format(upload.path("bytesPerSecond").asLong()) + "/s" : "");
        }
        lazyPulls(report.path("lazyPulls"), out);
        JsonNode errors = report.path("recentErrors");
        out.println("  last errors: " + (errors.isEmpty() ? "none" : ""));
        for (int i = Math.max(0, errors.size() - 5); i < errors.size(); i++) {
            JsonNode error = errors.get(i);
            out.printf("    %s %s %s %s%n", error.path("time").asText(), error.path("errno").asText(),
                    error.path("operation").asText(), error.path("path").asText());
        }
    }

    /** {@code lazy pulls: 1}, then per disk: {@code sha256:… 42.0% of 20 GiB (on demand 1 MiB, background 8 MiB, 0 bad chunks)}. */
    private static void lazyPulls(JsonNode lazy, PrintWriter out) {
        out.println("  lazy pulls served over NBD: " + (lazy.isEmpty() ? "none" : lazy.size()));
        for (JsonNode disk : lazy) {
            out.printf("    %s %s of %s (on demand %s, background %s, %d bad chunks)%s%n", disk.path("digest").asText(),
                    disk.path("placed").asBoolean() ? "placed" : disk.path("fetchedPercent").asDouble() + "%",
                    ByteSizes.format(disk.path("size").asLong()), ByteSizes.format(disk.path("onDemandBytes").asLong()),
                    ByteSizes.format(disk.path("backgroundBytes").asLong()), disk.path("chunkFailures").asLong(),
                    disk.path("chunkFailures").asLong() > 0 ? " — see the mount's log" : "");
        }
    }

    private static void images(JsonNode images, PrintWriter out) {
        if (images.has("error")) {
            out.println("images: cannot read the store: " + images.path("error").asText());
        } else {
            List<String> formats = new ArrayList<>();
            images.path("byFormat").fields().forEachRemaining(e -> formats.add(e.getKey() + " " + e.getValue().path("count").asInt()));
            out.printf("images: %d (%s) under %d name(s)%s%n", images.path("count").asInt(),
                    ByteSizes.format(images.path("bytes").asLong()), images.path("names").asInt(),
                    formats.isEmpty() ? "" : "; " + String.join(", ", formats));
            for (JsonNode nameless : images.path("nameless")) {
                out.printf("  nameless %s (%s), kept: %s%n", nameless.path("digest").asText(),
                        ByteSizes.format(nameless.path("bytes").asLong()), nameless.path("keptBecause").asText());
            }
            for (JsonNode hold : images.path("holds")) {
                out.printf("  hold on %s%s: keeps %d image(s)%n", hold.path("hold").asText(),
                        hold.path("why").asText().isEmpty() ? "" : " (" + hold.path("why").asText() + ")", hold.path("images").asInt());
            }
            JsonNode gc = images.path("gcWouldFree");
            out.printf("gc would free: %s (%d file(s))%n", ByteSizes.format(gc.path("bytes").asLong()), gc.path("files").asInt());
            JsonNode fs = images.path("filesystem");
            out.printf("free space: %s of %s on the store's filesystem (a mount's prune_at watermark is among its options)%n",
                    ByteSizes.format(fs.path("availableBytes").asLong()), ByteSizes.format(fs.path("totalBytes").asLong()));
        }
        JsonNode staging = images.path("staging");
        if (!staging.isEmpty()) {
            out.println("staging files (uploads being written): " + staging.size());
            staging.forEach(f -> out.printf("  %s %s%n", f.path("file").asText(), ByteSizes.format(f.path("bytes").asLong())));
        }
    }

    private static Map<String, String> names(JsonNode images) {
        Map<String, String> names = new HashMap<>();
        images.path("digests").forEach(d -> names.put(d.path("digest").asText(), d.path("name").asText("(no name)")));
        return names;
    }

    private static double value(JsonNode metrics, String name) {
        double sum = 0;
        for (JsonNode point : metrics.path(name)) {
            sum += point.path("value").asDouble();
        }
        return sum;
    }

    private static String uptime(long seconds) {
        Duration up = Duration.ofSeconds(seconds);
        return up.toDays() > 0 ? up.toDays() + "d " + up.toHoursPart() + "h"
                : up.toHours() > 0 ? up.toHours() + "h " + up.toMinutesPart() + "m"
                : up.toMinutes() > 0 ? up.toMinutes() + "m " + up.toSecondsPart() + "s" : seconds + "s";
    }

    private static String shorten(String text, int limit) {
        return text.length() <= limit ? text : text.substring(0, limit - 1) + "…";
    }
}
