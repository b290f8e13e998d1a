package io.vimgfs.fs;

import java.util.Optional;

/**
 * The entries of {@code incoming/} as nodes: the directories and uploads {@link IncomingArea}
 * holds, each at its path in the mount. The area names them relative to {@code incoming/};
 * this is the one place that turns the mount's paths into the area's.
 */
final class IncomingTree {
    private final IncomingArea area;
    private final StoreView view;

    IncomingTree(IncomingArea area, StoreView view) {
        this.area = area;
        this.view = view;
    }

    /** The node at a path under {@code incoming/}, or {@code incoming/} itself. */
    Optional<Node> lookup(String path) {
        String relative = relative(path);
        if (area.isDirectory(relative)) {
            return Optional.of(new Node.IncomingDirectory(path, relative, area, view));
        }
        return area.file(relative).map(file -> new Node.IncomingUpload(path, relative, file, area, view.store()));
    }

    /** A path of the mount under {@code incoming/}, as the area names it ({@code ""} for incoming/ itself). */
    static String relative(String path) {
        return path.equals(ImageTree.INCOMING) ? "" : path.substring(ImageTree.INCOMING.length() + 1);
    }
}
