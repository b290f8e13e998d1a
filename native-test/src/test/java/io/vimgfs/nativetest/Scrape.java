package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What Prometheus would see: a GET of a mount's {@code /metrics} over loopback, parsed. */
final class Scrape {
    private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*\\})? (\\S+)$");

    private Scrape() {
    }

    /** GET /metrics over loopback, parsed: each sample line's name{labels} and value. */
    static Map<String, Double> metrics(int port) throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode());
        assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"), response.headers().toString());
        Map<String, Double> samples = new HashMap<>();
        for (String line : response.body().split("\n")) {
            Matcher matcher = SAMPLE.matcher(line);
            if (!line.startsWith("#") && matcher.matches()) {
                samples.put(matcher.group(1) + (matcher.group(2) == null ? "" : matcher.group(2)), Double.parseDouble(matcher.group(3)));
            }
        }
        assertTrue(samples.size() > 20, response.body());
        return samples;
    }

    /** The sum of every sample whose name{labels… starts with the prefix. */
    static double sum(Map<String, Double> samples, String prefix) {
        return samples.entrySet().stream().filter(e -> e.getKey().equals(prefix) || e.getKey().startsWith(prefix + "{")
                || (prefix.contains("{") && e.getKey().startsWith(prefix))).mapToDouble(Map.Entry::getValue).sum();
    }
}
