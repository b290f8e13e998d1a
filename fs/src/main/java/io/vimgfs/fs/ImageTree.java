package io.vimgfs.fs;

import io.vimgfs.store.Digest;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageName;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * The read-only tree of SPEC §2 for one catalog generation: {@code by-digest/}, {@code by-name/}
 * and {@code tags/}, every path mapped to its node. Immutable; the filesystem builds a new one
 * when the store's generation changes and swaps it in.
 */
final class ImageTree {
    static final String BY_DIGEST = "/by-digest";
    static final String DIGEST_DIR = "/by-digest/sha256";
    static final String BY_NAME = "/by-name";
    static final String TAGS = "/tags";
    static final String INCOMING = "/incoming";

    private final long generation;
    private final Map<String, Node> nodes;
    private final Map<Digest, ImageInfo> images;

    private ImageTree(long generation, Map<String, Node> nodes, Map<Digest, ImageInfo> images) {
        this.generation = generation;
        this.nodes = nodes;
        this.images = images;
    }

    long generation() {
        return generation;
    }

    static ImageTree build(long generation, List<ImageInfo> images) {
        Map<String, TreeSet<String>> children = new HashMap<>();
        Map<String, Node> nodes = new HashMap<>();
        Map<Digest, ImageInfo> byDigest = new HashMap<>();
        for (String top : List.of("by-digest", "by-name", "incoming", "tags")) {
            child(children, "/", top);
        }
        child(children, BY_DIGEST, "sha256");
        children.computeIfAbsent(BY_NAME, k -> new TreeSet<>());
        children.computeIfAbsent(TAGS, k -> new TreeSet<>());
        children.computeIfAbsent(INCOMING, k -> new TreeSet<>());
        children.computeIfAbsent(DIGEST_DIR, k -> new TreeSet<>());

        for (ImageInfo image : images) {
            byDigest.put(image.digest(), image);
            String file = DIGEST_DIR + "/" + image.digest().hex();
            nodes.put(file, new Node.ImageFile(image));
            child(children, DIGEST_DIR, image.digest().hex());
            for (ImageName name : image.names()) {
                addLink(children, nodes, BY_NAME + "/" + name, image, name);
                addLink(children, nodes, TAGS + "/" + name.repository() + "/" + name.tag(), image, name);
            }
        }
        for (Map.Entry<String, TreeSet<String>> dir : children.entrySet()) {
            List<String> entries = List.copyOf(dir.getValue());
            int subdirectories = (int) entries.stream().filter(e -> children.containsKey(join(dir.getKey(), e))).count();
            nodes.put(dir.getKey(), new Node.Directory(dir.getKey(), entries, subdirectories, Inodes.ofPath(dir.getKey())));
        }
        return new ImageTree(generation, Map.copyOf(nodes), Map.copyOf(byDigest));
    }

    /**
     * Adds a link and the directories above it. Where a tag's path is also a repository's
     * directory ({@code tags/a/b} for {@code a:b} and {@code a/b:c}), the directory wins; the
     * tag stays reachable under {@code by-name/}.
     */
    private static void addLink(Map<String, TreeSet<String>> children, Map<String, Node> nodes, String path,
            ImageInfo image, ImageName name) {
        int slash = path.lastIndexOf('/');
        String parent = path.substring(0, slash);
        String ancestor = parent;
        while (!ancestor.isEmpty()) {
            int up = ancestor.lastIndexOf('/');
            String above = up == 0 ? "/" : ancestor.substring(0, up);
            child(children, above, ancestor.substring(up + 1));
            nodes.remove(ancestor); // a directory displaces a link of the same path
            if (up == 0) {
                break;
            }
            ancestor = above;
        }
        children.computeIfAbsent(parent, k -> new TreeSet<>());
        if (children.containsKey(path)) {
            return;
        }
        child(children, parent, path.substring(slash + 1));
        nodes.put(path, new Node.Link(path, relativeTarget(parent, image.digest()), image, Optional.of(name), Inodes.ofPath(path)));
    }

    private static void child(Map<String, TreeSet<String>> children, String dir, String name) {
        children.computeIfAbsent(dir, k -> new TreeSet<>()).add(name);
    }

    private static String join(String dir, String name) {
        return dir.equals("/") ? "/" + name : dir + "/" + name;
    }

    /** From a directory of the tree, the relative path to an image's file. */
    static String relativeTarget(String fromDirectory, Digest digest) {
        long depth = fromDirectory.chars().filter(c -> c == '/').count();
        return "../".repeat((int) depth) + "by-digest/sha256/" + digest.hex();
    }

    /**
     * The node at a path. A bare {@code <64 hex>} of a stored image also resolves, as a link, in
     * every directory under {@code by-name/} and {@code tags/} (SPEC §6), without being listed.
     */
    Optional<Node> lookup(String path) {
        Node node = nodes.get(path);
        if (node != null) {
            return Optional.of(node);
        }
        int slash = path.lastIndexOf('/');
        if (slash <= 0) {
            return Optional.empty();
        }
        String parent = path.substring(0, slash);
        String leaf = path.substring(slash + 1);
        if (Digest.isHex64(leaf) && underNames(parent) && nodes.get(parent) instanceof Node.Directory) {
            ImageInfo image = images.get(new Digest(leaf));
            if (image != null) {
                return Optional.of(new Node.Link(path, relativeTarget(parent, image.digest()), image, Optional.empty(),
                        Inodes.ofPath(path)));
            }
        }
        return Optional.empty();
    }

    Optional<ImageInfo> image(Digest digest) {
        return Optional.ofNullable(images.get(digest));
    }

    static boolean underNames(String path) {
        return path.equals(BY_NAME) || path.startsWith(BY_NAME + "/") || path.equals(TAGS) || path.startsWith(TAGS + "/");
    }

    static boolean isIncoming(String path) {
        return path.equals(INCOMING) || path.startsWith(INCOMING + "/");
    }
}
