package io.vimgfs.store;

import java.nio.file.Path;
import java.time.Clock;
import java.util.Set;
import java.util.function.Consumer;

/**
 * How a store is opened.
 *
 * @param clock        the time recorded as an image's creation
 * @param mountRoots   mountpoints of this store: an absolute backing file under
 *                     {@code <root>/by-digest/sha256/} is accepted (SPEC §6)
 * @param crashHook    called at each {@link CrashPoint}; tests use it to stop the process there
 */
public record StoreOptions(Clock clock, Set<Path> mountRoots, Consumer<CrashPoint> crashHook) {

    public StoreOptions {
        mountRoots = Set.copyOf(mountRoots);
    }

    public static StoreOptions defaults() {
        return new StoreOptions(Clock.systemUTC(), Set.of(), point -> { });
    }

    public StoreOptions withMountRoots(Set<Path> roots) {
        return new StoreOptions(clock, roots, crashHook);
    }

    public StoreOptions withCrashHook(Consumer<CrashPoint> hook) {
        return new StoreOptions(clock, mountRoots, hook);
    }

    public StoreOptions withClock(Clock newClock) {
        return new StoreOptions(newClock, mountRoots, crashHook);
    }
}
