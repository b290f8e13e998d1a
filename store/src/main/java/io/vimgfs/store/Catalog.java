package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.pcollections.HashTreePMap;
import org.pcollections.PMap;
import org.pcollections.PSet;
import org.pcollections.PSortedMap;
import org.pcollections.PSortedSet;
import org.pcollections.PVector;
import org.pcollections.TreePMap;
import org.pcollections.TreePSet;
import org.pcollections.TreePVector;

/**
 * An immutable snapshot of what the store holds: every live image by digest and every name.
 * Readers share one snapshot without locks; a change builds a new one, which is written to
 * index.json and then published. The maps are persistent, so a change costs O(log n) and
 * shares everything else with the snapshot it came from.
 *
 * <p>An image is live while it has a name, is the backing of a live image, or its {@link Keeper}
 * (the store's {@link Retention}) says something outside the catalog keeps it; changes drop the
 * rest, and remember what they dropped so the commit can delete those blobs.
 */
final class Catalog {
    /** Whether something outside the catalog (a hold, an overlay directory, a process) keeps a nameless image. */
    interface Keeper {
        boolean keeps(Digest digest);
    }

    /** Keeps every nameless image: a catalog read from index.json trusts what was kept when it was written. */
    static final Keeper KEEP_ALL = digest -> true;

    private static final Pattern DIGEST_PREFIX = Pattern.compile("(?:sha256:)?([0-9a-f]{3,64})");
    private static final Pattern OTHER_DIGEST = Pattern.compile("[a-z0-9]+:[0-9a-fA-F]{32,}");

    static final Catalog EMPTY = new Catalog(TreePMap.empty(), TreePMap.empty(), HashTreePMap.empty(),
            HashTreePMap.empty(), TreePVector.empty(), TreePVector.empty(), KEEP_ALL);

    private final PSortedMap<Digest, StoredImage> images;
    private final PSortedMap<ImageName, Digest> names;
    private final PMap<Digest, PSortedSet<ImageName>> namesByImage;
    /** For each base, the live images that name it as their backing. */
    private final PMap<Digest, PSet<Digest>> overlays;
    private final PVector<JsonNode> foreign;
    /** Images dropped since the last {@link #committed()}: their blobs are garbage. */
    private final PVector<StoredImage> dropped;
    /** Asked before a nameless image without overlays is dropped; changes pass it along. */
    private final Keeper keeper;

    private Catalog(PSortedMap<Digest, StoredImage> images, PSortedMap<ImageName, Digest> names,
            PMap<Digest, PSortedSet<ImageName>> namesByImage, PMap<Digest, PSet<Digest>> overlays,
            PVector<JsonNode> foreign, PVector<StoredImage> dropped, Keeper keeper) {
        this.images = images;
        this.names = names;
        this.namesByImage = namesByImage;
        this.overlays = overlays;
        this.foreign = foreign;
        this.dropped = dropped;
        this.keeper = keeper;
    }

    /** This catalog, asking {@code by} whether a nameless image stays in the changes made from it. */
    Catalog keptBy(Keeper by) {
        return by == keeper ? this : new Catalog(images, names, namesByImage, overlays, foreign, dropped, by);
    }

    /** Whether some image has no name (held, open, or an overlay's base): only named images are in namesByImage. */
    boolean hasNameless() {
        return images.size() > namesByImage.size();
    }

    /** This catalog without the nameless images nothing keeps any more (a hold ended, an overlay went, a file closed). */
    Catalog withoutUnkept() {
        Set<Digest> nameless = new HashSet<>();
        for (Digest digest : images.keySet()) {
            if (!namesByImage.containsKey(digest)) {
                nameless.add(digest);
            }
        }
        return prune(nameless);
    }

    /** This catalog without those of the images that are nameless and that nothing keeps. */
    Catalog withoutUnkept(Collection<Digest> among) {
        return prune(new HashSet<>(among));
    }

    /** The live images that name this one as their backing. */
    Set<Digest> overlaysOf(Digest digest) {
        return overlays.getOrDefault(digest, TreePSet.empty());
    }

    /** A catalog of the given images; each name must refer to one of them. Unreferenced images are dropped. */
    static Catalog of(Collection<StoredImage> images, Map<ImageName, Digest> names, List<JsonNode> foreign) {
        // Built in bulk from sorted maps, not by 10,000 persistent inserts: this runs at every mount.
        java.util.TreeMap<Digest, StoredImage> byDigest = new java.util.TreeMap<>();
        java.util.Map<Digest, java.util.TreeSet<Digest>> overlaysOf = new java.util.HashMap<>();
        for (StoredImage image : images) {
            byDigest.put(image.layer(), image);
            image.backing().ifPresent(base -> overlaysOf.computeIfAbsent(base, b -> new java.util.TreeSet<>()).add(image.layer()));
        }
        java.util.Map<Digest, java.util.TreeSet<ImageName>> namesOf = new java.util.HashMap<>();
        for (Map.Entry<ImageName, Digest> name : names.entrySet()) {
            if (!byDigest.containsKey(name.getValue())) {
                throw new IllegalArgumentException("name refers to an unknown image " + name.getValue());
            }
            namesOf.computeIfAbsent(name.getValue(), d -> new java.util.TreeSet<>()).add(name.getKey());
        }
        java.util.Map<Digest, PSortedSet<ImageName>> persistentNames = new java.util.HashMap<>();
        namesOf.forEach((digest, set) -> persistentNames.put(digest, TreePSet.fromSortedSet(set)));
        java.util.Map<Digest, PSet<Digest>> persistentOverlays = new java.util.HashMap<>();
        overlaysOf.forEach((digest, set) -> persistentOverlays.put(digest, TreePSet.fromSortedSet(set)));
        Catalog catalog = new Catalog(TreePMap.fromSortedMap(byDigest), TreePMap.fromSortedMap(new java.util.TreeMap<>(names)),
                HashTreePMap.from(persistentNames), HashTreePMap.from(persistentOverlays), TreePVector.from(foreign),
                TreePVector.empty(), KEEP_ALL);
        return catalog.prune(byDigest.keySet()).committed();
    }

    Collection<StoredImage> images() {
        return images.values();
    }

    /** How many images it holds. */
    int size() {
        return images.size();
    }

    NavigableMap<ImageName, Digest> names() {
        return names;
    }

    List<JsonNode> foreign() {
        return foreign;
    }

    /** The foreign descriptor a key names, if any. */
    Optional<JsonNode> foreign(ForeignKey key) {
        return foreign.stream().filter(d -> ForeignKey.of(d).filter(key::equals).isPresent()).findFirst();
    }

    /** This catalog with the key's descriptor replaced by {@code descriptor}, or removed. */
    private Catalog withForeign(ForeignKey key, Optional<JsonNode> descriptor) {
        PVector<JsonNode> kept = foreign;
        for (int i = kept.size() - 1; i >= 0; i--) {
            if (ForeignKey.of(kept.get(i)).filter(key::equals).isPresent()) {
                kept = kept.minus(i);
            }
        }
        if (descriptor.isPresent()) {
            kept = kept.plus(descriptor.get());
        }
        return new Catalog(images, names, namesByImage, overlays, kept, dropped, keeper);
    }

    Optional<StoredImage> image(Digest digest) {
        return Optional.ofNullable(images.get(digest));
    }

    /** Whether {@code digest} is one of the images (their layers), not a manifest or config. */
    boolean contains(Digest digest) {
        return images.containsKey(digest);
    }

    Optional<Digest> digestOf(ImageName name) {
        return Optional.ofNullable(names.get(name));
    }

    List<ImageName> namesOf(Digest digest) {
        PSortedSet<ImageName> of = namesByImage.get(digest);
        return of == null ? List.of() : List.copyOf(of);
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

    /**
     * Finds the image a user means: a name (optionally pinned), {@code sha256:<hex>}, or a unique
     * prefix of at least three hex digits. A name wins over a short digest prefix spelling the
     * same; a full digest always means the digest.
     */
    ImageInfo resolve(String reference) throws StoreException {
        Optional<Digest> named = nameIn(reference).flatMap(this::digestOf);
        if (named.isPresent()) {
            return info(image(named.get()).orElseThrow());
        }
        Matcher prefix = DIGEST_PREFIX.matcher(reference);
        if (prefix.matches()) {
            List<Digest> matches = withPrefix(prefix.group(1));
            if (matches.size() > 1) {
                throw new AmbiguousReferenceException(prefix.group(1), matches);
            }
            return matches.stream().findFirst().flatMap(this::image).map(this::info)
                    .orElseThrow(() -> new ImageNotFoundException(reference));
        }
        if (OTHER_DIGEST.matcher(reference).matches()) {
            Digest.parse(reference); // a digest in another algorithm: say so rather than "not found"
        }
        Reference parsed = Reference.parseExisting(reference);
        return digestOf(parsed.name())
                .filter(digest -> parsed.pin().map(digest::equals).orElse(true))
                .flatMap(this::image).map(this::info)
                .orElseThrow(() -> new ImageNotFoundException(reference));
    }

    /**
     * The stored name a reference means, if it means a name rather than a digest: {@code rm}
     * untags it. Older versions let a name spell a full digest ({@code <64 hex>}, or
     * {@code sha256:<64 hex>} as repository {@code sha256}); such a name is kept, but reached only
     * with an explicit tag ({@code <64 hex>:latest}), so it never stands in for the digest.
     */
    Optional<ImageName> nameIn(String reference) {
        Matcher prefix = DIGEST_PREFIX.matcher(reference);
        if (prefix.matches() && prefix.group(1).length() == 64) {
            return Optional.empty();
        }
        try {
            return Optional.of(Reference.parseExisting(reference)).filter(r -> r.pin().isEmpty())
                    .map(Reference::name).filter(name -> digestOf(name).isPresent());
        } catch (InvalidNameException e) {
            return Optional.empty();
        }
    }

    /** Images dropped by the changes since the last commit. */
    List<StoredImage> dropped() {
        return dropped;
    }

    /** The same catalog with its list of dropped images cleared, once their blobs are dealt with. */
    Catalog committed() {
        return dropped.isEmpty() ? this : new Catalog(images, names, namesByImage, overlays, foreign, TreePVector.empty(), keeper);
    }

    /**
     * This catalog with the changes applied in order, then the images they left without a name
     * or overlay dropped: the one way a commit, a journal replay or another process's commit
     * changes a catalog. A change that names an image the catalog lacks means the journal does
     * not fit this catalog: the store is damaged.
     */
    Catalog apply(List<? extends Change> changes) throws StoreDamagedException {
        Catalog catalog = this;
        Set<Digest> candidates = new HashSet<>();
        for (Change change : changes) {
            if (change instanceof Change.SetName set) {
                if (!catalog.images.containsKey(set.image())) {
                    throw new StoreDamagedException("a change names " + set.name() + " for an unknown image " + set.image());
                }
                Digest previous = catalog.names.get(set.name());
                if (previous != null) {
                    candidates.add(previous);
                }
                catalog = catalog.withNameOnly(set.name(), set.image());
            } else if (change instanceof Change.RemoveName remove) {
                Digest digest = catalog.names.get(remove.name());
                if (digest != null) {
                    candidates.add(digest);
                    catalog = catalog.withoutNameOnly(remove.name(), digest);
                }
            } else if (change instanceof Change.AddImage add) {
                candidates.add(add.image().layer());
                catalog = catalog.withImage(add.image());
            } else if (change instanceof Change.RemoveImage remove) {
                candidates.add(remove.image());
                for (ImageName name : catalog.namesOf(remove.image())) {
                    catalog = catalog.withoutNameOnly(name, remove.image());
                }
            } else if (change instanceof Change.DropImage drop) {
                catalog = catalog.withoutImage(drop.image());
            } else if (change instanceof Change.HoldChanged) {
                continue; // holds live in holds.json for now; the catalog does not carry them
            } else if (change instanceof Change.SetForeign set) {
                catalog = catalog.withForeign(set.key(), Optional.of(set.descriptor()));
            } else if (change instanceof Change.RemoveForeign remove) {
                catalog = catalog.withForeign(remove.key(), Optional.empty());
            }
        }
        return catalog.prune(candidates);
    }

    /** The changes that make {@code after} from this catalog: names set and removed, images added and dropped. */
    List<Change> changesTo(Catalog after) {
        List<Change> changes = new ArrayList<>();
        for (StoredImage image : after.images.values()) {
            if (!images.containsKey(image.layer())) {
                changes.add(new Change.AddImage(image));
            }
        }
        for (Map.Entry<ImageName, Digest> name : names.entrySet()) {
            if (!after.names.containsKey(name.getKey())) {
                changes.add(new Change.RemoveName(name.getKey()));
            }
        }
        for (Map.Entry<ImageName, Digest> name : after.names.entrySet()) {
            if (!name.getValue().equals(names.get(name.getKey()))) {
                changes.add(new Change.SetName(name.getKey(), name.getValue()));
            }
        }
        changes.addAll(dropsTo(after));
        return changes;
    }

    /** The images {@code after}, made from this catalog, dropped beyond those this one had dropped. */
    List<Change> dropsTo(Catalog after) {
        List<Change> drops = new ArrayList<>();
        for (StoredImage image : after.dropped.subList(Math.min(dropped.size(), after.dropped.size()), after.dropped.size())) {
            drops.add(new Change.DropImage(image.layer()));
        }
        return drops;
    }

    /** This catalog without the image, whatever keeps it, if it has no name and no overlay; its base becomes a candidate. */
    private Catalog withoutImage(Digest digest) {
        StoredImage image = images.get(digest);
        if (image == null || namesByImage.containsKey(digest) || overlays.containsKey(digest)) {
            return this;
        }
        PMap<Digest, PSet<Digest>> newOverlays = image.backing().isPresent()
                ? withoutOverlay(overlays, image.backing().get(), digest) : overlays;
        Catalog without = new Catalog(images.minus(digest), names, namesByImage, newOverlays, foreign, dropped.plus(image), keeper);
        return image.backing().isPresent() ? without.prune(Set.of(image.backing().get())) : without;
    }

    /** Fails unless the name may be given now: one ImageName#parse accepts, fitting the tags/ tree. */
    void checkNewName(ImageName name) throws InvalidNameException {
        ImageName.checkGivable(name);
        checkFitsTags(name);
    }

    /**
     * Under tags/, tag {@code a:b} is the link {@code tags/a/b} and repository {@code a/b} makes
     * {@code tags/a/b} a directory: one path cannot be both, so the second such name is refused.
     * A few sorted-map lookups, one per path component, whatever the number of names.
     */
    private void checkFitsTags(ImageName name) throws InvalidNameException {
        String link = name.repository() + "/" + name.tag();
        Optional<ImageName> below = firstNameOf(link).or(() -> firstNameOf(link + "/"));
        if (below.isPresent()) {
            throw new InvalidNameException(name.toString(), "tags/" + link + " cannot be this tag: it is the directory of "
                    + "repository '" + below.get().repository() + "' (tags/ shows tag a:b and repository a/b at one path)");
        }
        List<String> components = name.components();
        String directory = components.get(0);
        for (String component : components.subList(1, components.size())) {
            ImageName tag = new ImageName(directory, component);
            if (names.containsKey(tag)) {
                throw new InvalidNameException(name.toString(), "tags/" + directory + "/" + component + " cannot be a "
                        + "directory of this repository: it is the tag '" + tag + "' (tags/ shows tag a:b and repository a/b at one path)");
            }
            directory = directory + "/" + component;
        }
    }

    /** The first name of the repository, or (for a prefix ending in '/') of any repository under it. */
    private Optional<ImageName> firstNameOf(String repositoryOrPrefix) {
        ImageName first = names.ceilingKey(new ImageName(repositoryOrPrefix, "\u0000"));
        boolean under = repositoryOrPrefix.endsWith("/");
        return Optional.ofNullable(first).filter(n -> under ? n.repository().startsWith(repositoryOrPrefix)
                : n.repository().equals(repositoryOrPrefix));
    }

    Catalog withoutNames(Collection<ImageName> removed) {
        Catalog catalog = this;
        Set<Digest> candidates = new HashSet<>();
        for (ImageName name : removed) {
            Digest digest = catalog.names.get(name);
            if (digest != null) {
                candidates.add(digest);
                catalog = catalog.withoutNameOnly(name, digest);
            }
        }
        return catalog.prune(candidates);
    }

    private Catalog withImage(StoredImage image) {
        StoredImage existing = images.get(image.layer());
        if (image.equals(existing)) {
            return this;
        }
        PMap<Digest, PSet<Digest>> newOverlays = overlays;
        if (existing != null && existing.backing().isPresent()) {
            newOverlays = withoutOverlay(newOverlays, existing.backing().get(), image.layer());
        }
        if (image.backing().isPresent()) {
            PSet<Digest> of = newOverlays.getOrDefault(image.backing().get(), TreePSet.empty());
            newOverlays = newOverlays.plus(image.backing().get(), of.plus(image.layer()));
        }
        return new Catalog(images.plus(image.layer(), image), names, namesByImage, newOverlays, foreign, dropped, keeper);
    }

    private Catalog withNameOnly(ImageName name, Digest digest) {
        Digest previous = names.get(name);
        PMap<Digest, PSortedSet<ImageName>> byImage = namesByImage;
        if (previous != null) {
            byImage = withoutName(byImage, previous, name);
        }
        byImage = byImage.plus(digest, byImage.getOrDefault(digest, TreePSet.empty()).plus(name));
        return new Catalog(images, names.plus(name, digest), byImage, overlays, foreign, dropped, keeper);
    }

    private Catalog withoutNameOnly(ImageName name, Digest digest) {
        return new Catalog(images, names.minus(name), withoutName(namesByImage, digest, name), overlays, foreign, dropped, keeper);
    }

    private static PMap<Digest, PSortedSet<ImageName>> withoutName(PMap<Digest, PSortedSet<ImageName>> byImage,
            Digest digest, ImageName name) {
        PSortedSet<ImageName> rest = byImage.getOrDefault(digest, TreePSet.empty()).minus(name);
        return rest.isEmpty() ? byImage.minus(digest) : byImage.plus(digest, rest);
    }

    private static PMap<Digest, PSet<Digest>> withoutOverlay(PMap<Digest, PSet<Digest>> overlays, Digest base,
            Digest overlay) {
        PSet<Digest> rest = overlays.getOrDefault(base, TreePSet.empty()).minus(overlay);
        return rest.isEmpty() ? overlays.minus(base) : overlays.plus(base, rest);
    }

    /** Drops the candidates that have no name, no overlay and nothing outside keeping them, then their bases in turn. */
    private Catalog prune(Set<Digest> candidates) {
        PSortedMap<Digest, StoredImage> newImages = images;
        PMap<Digest, PSet<Digest>> newOverlays = overlays;
        PVector<StoredImage> newDropped = dropped;
        Deque<Digest> work = new ArrayDeque<>(candidates);
        while (!work.isEmpty()) {
            Digest digest = work.pop();
            StoredImage image = newImages.get(digest);
            if (image == null || namesByImage.containsKey(digest) || newOverlays.containsKey(digest)
                    || keeper.keeps(digest)) {
                continue;
            }
            newImages = newImages.minus(digest);
            newDropped = newDropped.plus(image);
            if (image.backing().isPresent()) {
                newOverlays = withoutOverlay(newOverlays, image.backing().get(), digest);
                work.push(image.backing().get());
            }
        }
        return newImages == images ? this : new Catalog(newImages, names, namesByImage, newOverlays, foreign, newDropped, keeper);
    }
}
