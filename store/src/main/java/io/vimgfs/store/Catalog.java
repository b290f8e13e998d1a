package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Optional;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * An immutable snapshot of what the store holds: every live image by digest and every name.
 * Readers share one snapshot without locks; a change builds a new one, which is written to
 * index.json and then published.
 *
 * <p>An image is live while it has a name or is the backing of a live image; {@link #pruned()}
 * drops the rest.
 */
final class Catalog {
    static final Catalog EMPTY = new Catalog(new TreeMap<>(), new TreeMap<>(), List.of());

    private final NavigableMap<Digest, StoredImage> images;
    private final SortedMap<ImageName, Digest> names;
    private final Map<Digest, List<ImageName>> namesByImage;
    private final List<JsonNode> foreign;

    private Catalog(NavigableMap<Digest, StoredImage> images, SortedMap<ImageName, Digest> names,
            List<JsonNode> foreign) {
        this.images = Collections.unmodifiableNavigableMap(images);
        this.names = Collections.unmodifiableSortedMap(names);
        this.foreign = List.copyOf(foreign);
        Map<Digest, List<ImageName>> byImage = new HashMap<>();
        names.forEach((name, digest) -> byImage.computeIfAbsent(digest, d -> new ArrayList<>()).add(name));
        byImage.replaceAll((d, list) -> List.copyOf(list));
        this.namesByImage = byImage;
    }

    /** A catalog of the given images; each name must refer to one of them. */
    static Catalog of(Collection<StoredImage> images, Map<ImageName, Digest> names, List<JsonNode> foreign) {
        NavigableMap<Digest, StoredImage> byDigest = new TreeMap<>();
        images.forEach(image -> byDigest.put(image.layer(), image));
        SortedMap<ImageName, Digest> sortedNames = new TreeMap<>(names);
        for (Digest digest : sortedNames.values()) {
            if (!byDigest.containsKey(digest)) {
                throw new IllegalArgumentException("name refers to an unknown image " + digest);
            }
        }
        return new Catalog(byDigest, sortedNames, foreign);
    }

    Collection<StoredImage> images() {
        return images.values();
    }

    SortedMap<ImageName, Digest> names() {
        return names;
    }

    List<JsonNode> foreign() {
        return foreign;
    }

    Optional<StoredImage> image(Digest digest) {
        return Optional.ofNullable(images.get(digest));
    }

    Optional<Digest> digestOf(ImageName name) {
        return Optional.ofNullable(names.get(name));
    }

    List<ImageName> namesOf(Digest digest) {
        return namesByImage.getOrDefault(digest, List.of());
    }

    ImageInfo info(StoredImage image) {
        return image.info(namesOf(image.layer()));
    }

    /** Images whose hex digest starts with the prefix (at most 64 lowercase hex digits), in order. */
    List<Digest> withPrefix(String hexPrefix) {
        String from = hexPrefix + "0".repeat(64 - hexPrefix.length());
        String to = hexPrefix + "f".repeat(64 - hexPrefix.length());
        return List.copyOf(images.subMap(new Digest(from), true, new Digest(to), true).keySet());
    }

    /** This catalog with the name moved to (or added for) the image. */
    Catalog withName(ImageName name, StoredImage image) {
        return withNames(List.of(Map.entry(name, image)));
    }

    /** This catalog with every name moved to (or added for) its image, in order, pruned once. */
    Catalog withNames(List<Map.Entry<ImageName, StoredImage>> added) {
        NavigableMap<Digest, StoredImage> newImages = new TreeMap<>(images);
        SortedMap<ImageName, Digest> newNames = new TreeMap<>(names);
        for (Map.Entry<ImageName, StoredImage> entry : added) {
            newImages.put(entry.getValue().layer(), entry.getValue());
            newNames.put(entry.getKey(), entry.getValue().layer());
        }
        return new Catalog(newImages, newNames, foreign).pruned();
    }

    Catalog withoutNames(Collection<ImageName> removed) {
        SortedMap<ImageName, Digest> newNames = new TreeMap<>(names);
        removed.forEach(newNames::remove);
        return new Catalog(new TreeMap<>(images), newNames, foreign).pruned();
    }

    Catalog withoutImages(Set<Digest> removed) {
        NavigableMap<Digest, StoredImage> newImages = new TreeMap<>(images);
        removed.forEach(newImages::remove);
        SortedMap<ImageName, Digest> newNames = new TreeMap<>(names);
        newNames.values().removeIf(removed::contains);
        return new Catalog(newImages, newNames, foreign).pruned();
    }

    /** Drops images that have no name and are not the backing of a kept image. */
    Catalog pruned() {
        Set<Digest> live = new HashSet<>(names.values());
        Deque<Digest> work = new ArrayDeque<>(live);
        while (!work.isEmpty()) {
            StoredImage image = images.get(work.pop());
            if (image != null && image.backing().isPresent() && live.add(image.backing().get())) {
                work.push(image.backing().get());
            }
        }
        if (live.size() == images.size()) {
            return this;
        }
        NavigableMap<Digest, StoredImage> kept = new TreeMap<>(images);
        kept.keySet().retainAll(live);
        return new Catalog(kept, new TreeMap<>(names), foreign);
    }

    /** Images that name the given one as their backing. */
    List<StoredImage> overlaysOf(Digest base) {
        return images.values().stream().filter(i -> i.backing().filter(base::equals).isPresent()).toList();
    }
}
