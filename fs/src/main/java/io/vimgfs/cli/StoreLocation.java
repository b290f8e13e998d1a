package io.vimgfs.cli;

import java.nio.file.Path;

/** Where the default store lives (SPEC §8). */
final class StoreLocation {
    private StoreLocation() {
    }

    static Path defaultStore() {
        String explicit = System.getenv("VIMGFS_STORE");
        if (explicit != null && !explicit.isEmpty()) {
            return Path.of(explicit);
        }
        if ("root".equals(System.getProperty("user.name"))) {
            return Path.of("/var/lib/vimgfs");
        }
        String xdg = System.getenv("XDG_DATA_HOME");
        Path data = xdg != null && !xdg.isEmpty() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".local", "share");
        return data.resolve("vimgfs");
    }
}
