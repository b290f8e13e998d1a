package io.vimgfs.store;

import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * How a store is opened.
 *
 * @param clock        the time recorded as an image's creation
 * @param mountRoots   mountpoints of this store: an absolute backing file under
 *                     {@code <root>/by-digest/sha256/} is accepted (SPEC §6)
 * @param crashHook    called at each {@link CrashPoint}; tests use it to stop the process there
 * @param audience     who may read the store's images from its directory; the mount passes the
 *                     one its options say, and the store's directories get its modes at open
 *                     (narrowing as well as widening). Empty (CLI verbs): an existing store keeps
 *                     its modes, a new one is {@link StoreAudience.Private}.
 * @param automaticOverlays overlay directories held without being asked while they exist
 *                     (libvirt's default pool), until {@code hold rm --overlays} drops one
 * @param events       told the cost of commits and index rewrites and what gc deleted (the mount's metrics)
 */
public record StoreOptions(Clock clock, Set<Path> mountRoots, Consumer<CrashPoint> crashHook,
        Optional<StoreAudience> audience, List<Path> automaticOverlays, StoreEvents events) {
    public static final Path LIBVIRT_IMAGES = Path.of("/var/lib/libvirt/images");

    public StoreOptions {
        mountRoots = Set.copyOf(mountRoots);
        automaticOverlays = List.copyOf(automaticOverlays);
        events = java.util.Objects.requireNonNull(events, "events");
    }

    public static StoreOptions defaults() {
        return new StoreOptions(Clock.systemUTC(), Set.of(), point -> { }, Optional.empty(), List.of(LIBVIRT_IMAGES),
                StoreEvents.NONE);
    }

    public StoreOptions withAutomaticOverlays(List<Path> directories) {
        return new StoreOptions(clock, mountRoots, crashHook, audience, directories, events);
    }

    public StoreOptions withMountRoots(Set<Path> roots) {
        return new StoreOptions(clock, roots, crashHook, audience, automaticOverlays, events);
    }

    public StoreOptions withCrashHook(Consumer<CrashPoint> hook) {
        return new StoreOptions(clock, mountRoots, hook, audience, automaticOverlays, events);
    }

    public StoreOptions withClock(Clock newClock) {
        return new StoreOptions(newClock, mountRoots, crashHook, audience, automaticOverlays, events);
    }

    public StoreOptions withAudience(StoreAudience newAudience) {
        return new StoreOptions(clock, mountRoots, crashHook, Optional.of(newAudience), automaticOverlays, events);
    }

    public StoreOptions withEvents(StoreEvents watcher) {
        return new StoreOptions(clock, mountRoots, crashHook, audience, automaticOverlays, watcher);
    }
}
