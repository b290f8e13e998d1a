package io.vimgfs.store;

import java.util.List;
import java.util.stream.Collectors;

/** Every image {@code prune} looked at: whether it goes, and why (the same words for --dry-run and the log). */
public record PruneReport(boolean dryRun, List<Decision> decisions) {

    /** One image and the decision on it. */
    public record Decision(ImageInfo image, boolean remove, String reason) {
        /** {@code would remove sha256:… app:1 (12 MiB): unused for 31d}, {@code keep sha256:… : held: golden}. */
        public String line(boolean dryRun) {
            String names = image.names().isEmpty() ? "<none>"
                    : image.names().stream().map(ImageName::toString).collect(Collectors.joining(","));
            String verb = remove ? (dryRun ? "would remove" : "removed") : "keep";
            return verb + " " + image.digest() + " " + names + " (" + image.size() + " bytes): " + reason;
        }
    }

    public PruneReport {
        decisions = List.copyOf(decisions);
    }

    public List<String> lines() {
        return decisions.stream().map(d -> d.line(dryRun)).toList();
    }

    public List<ImageInfo> removed() {
        return decisions.stream().filter(Decision::remove).map(Decision::image).toList();
    }
}
