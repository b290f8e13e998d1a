package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.FileStore;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * One prune decision over a catalog: which images a {@link PrunePolicy} chooses and, for every
 * image, why it goes or stays. Protected images (a {@link KeepReason} other than a name) are
 * never chosen; the policy's parts combine with AND, and {@code --until-free} takes the least
 * recently used first.
 */
final class PruneChoice {
    private final Catalog catalog;
    private final Retention.View view;
    private final PrunePolicy policy;
    private final Map<Digest, Instant> lastUse;
    private final Instant now;
    private final FileStore fileStore;

    PruneChoice(Catalog catalog, Retention.View view, PrunePolicy policy, Map<Digest, Instant> lastUse, Instant now,
            FileStore fileStore) {
        this.catalog = catalog;
        this.view = view;
        this.policy = policy;
        this.lastUse = lastUse;
        this.now = now;
        this.fileStore = fileStore;
    }

    List<PruneReport.Decision> decide() throws IOException {
        Map<Digest, String> recent = mostRecent();
        Map<Digest, PruneReport.Decision> decisions = new LinkedHashMap<>();
        List<StoredImage> chosen = new ArrayList<>();
        for (StoredImage image : catalog.images()) {
            Digest digest = image.layer();
            List<KeepReason> protecting = view.reasons(catalog, digest).stream().filter(KeepReason::protects).toList();
            String keep = null;
            if (!protecting.isEmpty()) {
                keep = protecting.stream().map(KeepReason::describe).collect(Collectors.joining("; "));
            } else if (recent.containsKey(digest)) {
                keep = recent.get(digest);
            } else if (policy.unusedFor().isPresent() && age(image).compareTo(policy.unusedFor().get()) < 0) {
                keep = "used " + Durations.format(age(image)) + " ago";
            }
            if (keep != null) {
                decisions.put(digest, new PruneReport.Decision(info(image), false, keep));
            } else {
                chosen.add(image);
            }
        }
        chosen.sort(Comparator.comparing(this::lastUsed).thenComparing(StoredImage::layer));
        long free = fileStore.getUsableSpace();
        long wanted = policy.untilFree().map(t -> t.bytes(totalSpace())).orElse(Long.MAX_VALUE);
        for (StoredImage image : chosen) {
            if (policy.untilFree().isPresent() && free >= wanted) {
                decisions.put(image.layer(), new PruneReport.Decision(info(image), false,
                        "enough free space (" + free + " bytes free, " + policy.untilFree().get() + " wanted)"));
                continue;
            }
            free += image.size();
            decisions.put(image.layer(), new PruneReport.Decision(info(image), true, reasonToRemove(image)));
        }
        List<PruneReport.Decision> ordered = new ArrayList<>(decisions.values());
        ordered.sort(Comparator.comparing((PruneReport.Decision d) -> !d.remove()).thenComparing(d -> d.image().digest()));
        return ordered;
    }

    private String reasonToRemove(StoredImage image) {
        List<String> why = new ArrayList<>();
        if (policy.unusedFor().isPresent()) {
            why.add("unused for " + Durations.format(age(image)));
        }
        if (policy.keepRecent().isPresent()) {
            why.add(catalog.namesOf(image.layer()).isEmpty() ? "no name" : "older than the " + policy.keepRecent().getAsInt()
                    + " most recent of its repositories");
        }
        if (policy.untilFree().isPresent()) {
            why.add("least recently used while space is short");
        }
        return why.isEmpty() ? "nothing keeps it" : String.join(", ", why);
    }

    /** The N most recently placed images of each repository, and which place they have. */
    private Map<Digest, String> mostRecent() {
        Map<Digest, String> kept = new HashMap<>();
        if (policy.keepRecent().isEmpty()) {
            return kept;
        }
        Map<String, List<StoredImage>> byRepository = new HashMap<>();
        catalog.names().forEach((name, digest) -> byRepository.computeIfAbsent(name.repository(), r -> new ArrayList<>())
                .add(catalog.image(digest).orElseThrow()));
        byRepository.forEach((repository, images) -> {
            List<StoredImage> distinct = images.stream().distinct()
                    .sorted(Comparator.comparing(StoredImage::created).reversed().thenComparing(StoredImage::layer)).toList();
            for (int i = 0; i < Math.min(policy.keepRecent().getAsInt(), distinct.size()); i++) {
                kept.putIfAbsent(distinct.get(i).layer(), ordinal(i + 1) + " most recent of " + repository);
            }
        });
        return kept;
    }

    private Instant lastUsed(StoredImage image) {
        Instant used = lastUse.get(image.layer());
        return used != null && used.isAfter(image.created()) ? used : image.created();
    }

    private Duration age(StoredImage image) {
        Duration age = Duration.between(lastUsed(image), now);
        return age.isNegative() ? Duration.ZERO : age;
    }

    private long totalSpace() {
        try {
            return fileStore.getTotalSpace();
        } catch (IOException e) {
            return 0;
        }
    }

    private ImageInfo info(StoredImage image) {
        return catalog.info(image);
    }

    static String ordinal(int n) {
        String suffix = (n % 100 >= 11 && n % 100 <= 13) ? "th" : switch (n % 10) {
            case 1 -> "st";
            case 2 -> "nd";
            case 3 -> "rd";
            default -> "th";
        };
        return n + suffix;
    }
}
