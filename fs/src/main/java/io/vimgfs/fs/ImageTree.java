package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import io.vimgfs.store.ImagePaths;
import io.vimgfs.store.ImageStore;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.NavigableMap;
import java.util.Optional;

/**
 * The read-only tree of SPEC §2 — {@code by-digest/}, {@code by-name/} and {@code tags/} — as
 * a view of the store's current catalog. Nothing is built ahead: a lookup is a few lookups in
 * the catalog's sorted maps, so a change to one name costs nothing here, whatever the store's size.
 *
 * <p>A tag's path can never also be a repository's directory ({@code tags/a/b} for {@code a:b}
 * and {@code a/b:c}): the store refuses the second such name. A bare digest wins over a tag or
 * repository spelled as 64 hex that an older version stored.
 */
final class ImageTree {
    static final String BY_DIGEST = "/" + ImagePaths.BY_DIGEST;
    static final String DIGEST_DIR = "/" + ImagePaths.DIGEST_DIR;
    static final String BY_NAME = "/" + ImagePaths.BY_NAME;
    static final String TAGS = "/" + ImagePaths.TAGS;
    static final String INCOMING = "/incoming";
    private static final List<String> ROOT_ENTRIES = List.of(ImagePaths.BY_DIGEST, ImagePaths.BY_NAME, "incoming", ImagePaths.TAGS);

    private final ImageStore store;
    private final StoreView view;
    /** The last directory listed and the catalog's names it was listed from: find and ls list one directory again and again. */
    private volatile Listing lastListing;

    private record Listing(String path, NavigableMap<ImageName, Digest> names, List<String> entries) {
    }

    ImageTree(StoreView view) {
        this.store = view.store();
        this.view = view;
    }

    /**
     * The node at a path. A bare {@code <64 hex>} of a stored image also resolves, as a link, in
     * every directory under {@code by-name/} and {@code tags/} (SPEC §6), without being listed.
     */
    Optional<Node> lookup(String path) {
        switch (path) {
            case "/":
                return Optional.of(directory(path, ROOT_ENTRIES, 4));
            case BY_DIGEST:
                return Optional.of(directory(path, List.of(Digest.ALGORITHM), 1));
            case DIGEST_DIR:
                return Optional.of(directory(path, null, 0));
            case BY_NAME:
            case TAGS:
                return Optional.of(directory(path, null, 0));
            default:
                break;
        }
        if (path.startsWith(DIGEST_DIR + "/")) {
            String hex = path.substring(DIGEST_DIR.length() + 1);
            return Digest.isHex64(hex) ? store.image(new Digest(hex)).map(image -> imageEntry(path, image)) : Optional.empty();
        }
        boolean tags = path.startsWith(TAGS + "/");
        if (!tags && !path.startsWith(BY_NAME + "/")) {
            return Optional.empty();
        }
        String rest = path.substring((tags ? TAGS : BY_NAME).length() + 1);
        int slash = rest.lastIndexOf('/');
        String parent = slash < 0 ? "" : rest.substring(0, slash);
        String leaf = rest.substring(slash + 1);
        // A bare digest always means the digest (issue 8): a tag or repository spelled as 64 hex
        // must never make an overlay's backing file resolve to other bytes.
        if (Digest.isHex64(leaf) && (parent.isEmpty() || hasRepositoriesUnder(parent, tags))) {
            Optional<ImageInfo> base = store.image(new Digest(leaf));
            if (base.isPresent()) {
                return Optional.of(link(path, base.get(), Optional.empty()));
            }
        }
        if (hasRepositoriesUnder(rest, tags)) {
            return Optional.of(directory(path, null, 0));
        }
        Optional<ImageName> name = tags ? nameOf(parent, leaf) : nameOf(rest);
        Optional<Digest> digest = name.flatMap(n -> Optional.ofNullable(store.names().get(n)));
        return digest.flatMap(store::image).map(image -> link(path, image, name));
    }

    /** The entries of a directory of the tree, sorted. */
    List<String> list(String path) {
        if (path.equals(DIGEST_DIR)) {
            return store.list().stream().map(image -> image.digest().hex()).toList();
        }
        if (path.equals("/")) {
            return ROOT_ENTRIES;
        }
        if (path.equals(BY_DIGEST)) {
            return List.of(Digest.ALGORITHM);
        }
        NavigableMap<ImageName, Digest> names = store.names();
        Listing last = lastListing;
        if (last != null && last.names() == names && last.path().equals(path)) {
            return last.entries(); // the catalog is immutable: the same map, the same listing
        }
        List<String> entries = listNames(path, names);
        lastListing = new Listing(path, names, entries);
        return entries;
    }

    /** The entries of a by-name/ or tags/ directory, in name order. */
    private static List<String> listNames(String path, NavigableMap<ImageName, Digest> names) {
        boolean tags = path.equals(TAGS) || path.startsWith(TAGS + "/");
        String prefix = path.equals(TAGS) || path.equals(BY_NAME) ? ""
                : path.substring((tags ? TAGS : BY_NAME).length() + 1);
        // names come sorted, so entries mostly do: sorting the list is one pass, a TreeSet was a
        // third of a 10,000-name readdir
        List<String> entries = new ArrayList<>();
        for (ImageName name : names.tailMap(probe(prefix), true).keySet()) {
            String repository = name.repository();
            if (!repository.startsWith(prefix)) {
                break; // repositories sharing the prefix are contiguous in name order
            }
            if (repository.equals(prefix)) {
                if (tags) {
                    entries.add(name.tag());
                }
                continue;
            }
            if (!prefix.isEmpty() && repository.charAt(prefix.length()) != '/') {
                continue; // "a-b" after "a": a neighbour, not a child
            }
            String below = prefix.isEmpty() ? repository : repository.substring(prefix.length() + 1);
            int slash = below.indexOf('/');
            if (slash >= 0) {
                entries.add(below.substring(0, slash));
            } else {
                entries.add(tags ? below : below + ":" + name.tag());
            }
        }
        entries.sort(null);
        List<String> unique = new ArrayList<>(entries.size());
        for (String entry : entries) {
            if (unique.isEmpty() || !unique.get(unique.size() - 1).equals(entry)) {
                unique.add(entry);
            }
        }
        return Collections.unmodifiableList(unique);
    }

    /** Whether the path below by-name/ or tags/ is a directory: some repository lives under it. */
    private boolean hasRepositoriesUnder(String rest, boolean tags) {
        NavigableMap<ImageName, Digest> names = store.names();
        if (tags) {
            ImageName exact = names.ceilingKey(probe(rest));
            if (exact != null && exact.repository().equals(rest)) {
                return true;
            }
        }
        ImageName below = names.ceilingKey(probe(rest + "/"));
        return below != null && below.repository().startsWith(rest + "/");
    }

    /** The smallest name of a repository: every name of it, and of repositories after it, sorts at or after. */
    private static ImageName probe(String repository) {
        return new ImageName(repository.isEmpty() ? "\u0000" : repository, "\u0000");
    }

    private static Optional<ImageName> nameOf(String repository, String tag) {
        if (repository.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new ImageName(repository, tag));
    }

    private static Optional<ImageName> nameOf(String byNamePath) {
        int slash = byNamePath.lastIndexOf('/');
        int colon = byNamePath.lastIndexOf(':');
        if (colon <= slash + 1 || colon == byNamePath.length() - 1) {
            return Optional.empty();
        }
        return Optional.of(new ImageName(byNamePath.substring(0, colon), byNamePath.substring(colon + 1)));
    }

    /** {@code by-digest/sha256/<hex>}: a link to the blob, or with {@code -o data=fuse} the bytes themselves. */
    private Node imageEntry(String path, ImageInfo image) {
        return view.mode() == DataMode.LINK
                ? new Node.BlobLink(path, image, view.blobTarget(image.digest()), view)
                : new Node.ImageFile(path, image, view);
    }

    private Node.NameLink link(String path, ImageInfo image, Optional<ImageName> name) {
        String parent = path.substring(0, path.lastIndexOf('/'));
        return new Node.NameLink(path, relativeTarget(parent, image.digest()), image, name, Inodes.ofPath(path), view);
    }

    private Node.Directory directory(String path, List<String> fixedEntries, int subdirectories) {
        return new Node.Directory(path, fixedEntries, subdirectories, Inodes.ofPath(path), view, this);
    }

    /** From a directory of the tree, the relative path to an image's file. */
    static String relativeTarget(String fromDirectory, Digest digest) {
        long depth = fromDirectory.chars().filter(c -> c == '/').count();
        return "../".repeat((int) depth) + ImagePaths.byDigest(digest);
    }

    static boolean underNames(String path) {
        return path.equals(BY_NAME) || path.startsWith(BY_NAME + "/") || path.equals(TAGS) || path.startsWith(TAGS + "/");
    }

    static boolean isIncoming(String path) {
        return path.equals(INCOMING) || path.startsWith(INCOMING + "/");
    }
}
