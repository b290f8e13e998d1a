package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static io.vimgfs.store.StoreFiles.blob;
import static io.vimgfs.store.StoreFiles.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Holds, overlay directories, open images and prune: nothing a VM needs is collected, and every decision says why. */
class HoldsTest {
    @TempDir
    Path dir;
    private Path root;
    private Path libvirt;
    private final MutableClock clock = new MutableClock(Instant.parse("2024-01-01T00:00:00Z"));
    private ImageStore store;

    @BeforeEach
    void openStore() throws IOException {
        root = dir.resolve("store");
        libvirt = Files.createDirectories(dir.resolve("libvirt-images"));
        store = open();
    }

    private ImageStore open() throws IOException {
        return ImageStore.open(root, StoreOptions.defaults().withClock(clock).withAutomaticOverlays(List.of(libvirt)));
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @Test
    void aHeldImageOutlivesItsLastNameUntilTheHoldEnds() throws Exception {
        ImageInfo golden = add("golden:1", "golden");
        assertThrows(ImageNotFoundException.class, () -> store.hold("nosuch:1", ""), "holding an unknown image fails");
        store.hold(golden.digest().hex().substring(0, 8), "golden image");

        store.untag(ImageName.parse("golden:1"));
        store.collectGarbage(false);
        assertTrue(store.image(golden.digest()).isPresent(), "held: it stays, nameless");
        assertTrue(Files.exists(blob(root, golden.digest().hex())));
        assertEquals(List.of("held: golden image"), describe(store.keepReasons().get(golden.digest())));

        store.close();
        store = open();
        assertTrue(store.image(golden.digest()).isPresent(), "the hold survives reopening");
        assertEquals(List.of(golden.digest()), store.heldNow().values().stream().flatMap(List::stream).toList());

        store.tag(golden.digest().toString(), ImageName.parse("golden:again"));
        assertEquals(golden.digest(), store.resolve("golden:again").digest(), "tag sha256:<hex> names it again");
        store.untag(ImageName.parse("golden:again"));

        store.release(golden.digest().toString());
        assertTrue(store.image(golden.digest()).isEmpty(), "the hold was the last thing keeping it: it goes at once");
        store.syncIndex(); // blobs go once the index on disk no longer names them
        assertFalse(Files.exists(blob(root, golden.digest().hex())));
        assertThrows(ImageNotFoundException.class, () -> store.release("golden:1"), "no such hold");
    }

    @Test
    void overlaysUnderAHeldDirectoryKeepTheirWholeChain() throws Exception {
        ImageInfo viaBlob = add("base:blob", "blob");
        ImageInfo viaMount = add("base:mount", "mount");
        ImageInfo viaTag = add("base:tag", "tag");
        ImageInfo unused = add("base:unused", "unused");
        Path vms = dir.resolve("vms");
        Files.createDirectories(vms.resolve("nested"));
        Path outside = Files.createDirectories(dir.resolve("outside"));
        assertThrows(NoSuchFileException.class, () -> store.holdOverlays(dir.resolve("missing"), ""));
        store.holdOverlays(dir.resolve("vms"), "my VMs");

        Path direct = qcow2(vms.resolve("direct.qcow2"), store.imagePath(viaBlob.digest()).toString());
        // two overlays outside the store, the last naming a mount's by-digest entry
        qcow2(outside.resolve("mid2.qcow2"), "/mnt/images/by-digest/sha256/" + viaMount.digest().hex());
        qcow2(outside.resolve("mid1.qcow2"), "mid2.qcow2");
        Path chained = qcow2(vms.resolve("nested/vm.qcow2"), outside.resolve("mid1.qcow2").toString());
        Path tagged = qcow2(vms.resolve("tagged.qcow2"), "/mnt/images/by-digest/sha256/" + viaTag.digest().hex());
        Files.writeString(vms.resolve("notes.txt"), "not an image");

        for (String name : List.of("base:blob", "base:mount", "base:tag", "base:unused")) {
            store.untag(ImageName.parse(name));
        }
        store.collectGarbage(false);
        assertTrue(store.image(viaBlob.digest()).isPresent(), "an overlay naming the blob path keeps it");
        assertTrue(store.image(viaMount.digest()).isPresent(), "a chain through two outside overlays keeps its base");
        assertTrue(store.image(viaTag.digest()).isPresent());
        assertTrue(store.image(unused.digest()).isEmpty(), "nothing uses it: gone with its name, as before");
        assertEquals(List.of("backing of " + chained), describe(store.keepReasons().get(viaMount.digest())));
        assertEquals(List.of("backing of " + direct), describe(store.keepReasons().get(viaBlob.digest())));

        Files.delete(tagged);
        GcReport report = store.collectGarbage(false);
        assertTrue(store.image(viaTag.digest()).isEmpty(), "its overlay is deleted: the next gc collects the base");
        assertTrue(report.removals().stream().anyMatch(r -> r.reason().contains("nothing keeps it")), report.toString());

        store.releaseOverlays(dir.resolve("vms"));
        assertTrue(store.image(viaBlob.digest()).isEmpty(), "the directory's hold ended: its bases go");
    }

    @Test
    void libvirtsDirectoryIsHeldUntilDropped() throws Exception {
        ImageInfo base = add("cirros:0.6.2", "cirros");
        qcow2(libvirt.resolve("vm1.qcow2"), store.imagePath(base.digest()).toString());
        Hold automatic = store.holds().get(0);
        assertTrue(automatic instanceof Hold.Overlays o && o.automatic(), automatic.toString());
        assertTrue(automatic.subject().contains("automatic"), automatic.subject());

        store.untag(ImageName.parse("cirros:0.6.2"));
        assertTrue(store.image(base.digest()).isPresent(), "rm of the base's last tag keeps it for the stopped VM");
        assertEquals(Map.of(automatic, List.of(base.digest())), store.heldNow());

        store.releaseOverlays(libvirt);
        assertEquals(List.of(), store.holds(), "dropped, and it stays dropped");
        assertTrue(store.image(base.digest()).isEmpty());
    }

    @Test
    void anOpenImageStaysVisibleUntilClosed() throws Exception {
        ImageInfo image = add("app:1", "open");
        Process reader = holdOpen(image.digest());
        try {
            store.untag(ImageName.parse("app:1"));
            store.collectGarbage(false);
            assertTrue(store.image(image.digest()).isPresent(), "open: it stays in the catalog");
            assertTrue(describe(store.keepReasons().get(image.digest())).get(0).startsWith("in use by pid "),
                    store.keepReasons().toString());
        } finally {
            stop(reader);
        }
        store.collectGarbage(false);
        assertTrue(store.image(image.digest()).isEmpty(), "closed: the next gc removes it");
    }

    @Test
    void pruneKeepsRecentAndUsedAndNeverTouchesHeldOrOpenImages() throws Exception {
        ImageInfo app1 = add("app:1", "a1");
        clock.advance(Duration.ofDays(1));
        ImageInfo app2 = add("app:2", "a2");
        clock.advance(Duration.ofDays(1));
        ImageInfo app3 = add("app:3", "a3");
        ImageInfo held = add("old:held", "held");
        ImageInfo open = add("old:open", "open");
        ImageInfo used = add("old:used", "used");
        clock.advance(Duration.ofDays(40));
        store.recordUse(used.digest());
        store.hold("old:held", "golden image");

        PruneReport dry;
        Process reader = holdOpen(open.digest());
        try {
            dry = store.prune(new PrunePolicy(OptionalInt.of(2), Optional.of(Duration.ofDays(30)), Optional.empty()), true);
            assertEquals(6, store.list().size(), "a dry run changes nothing");
            PruneReport real = store.prune(new PrunePolicy(OptionalInt.of(2), Optional.of(Duration.ofDays(30)),
                    Optional.empty()), false);
            assertEquals(List.of(app1.digest()), real.removed().stream().map(ImageInfo::digest).toList());
        } finally {
            stop(reader);
        }
        String lines = String.join("\n", dry.lines());
        assertTrue(lines.contains("would remove " + app1.digest() + " app:1"), lines);
        assertTrue(lines.contains("keep " + app3.digest() + " app:3 (2 bytes): 1st most recent of app"), lines);
        assertTrue(lines.contains("keep " + app2.digest() + " app:2 (2 bytes): 2nd most recent of app"), lines);
        assertTrue(lines.contains("keep " + held.digest() + " old:held (4 bytes): held: golden image"), lines);
        assertTrue(lines.contains("keep " + open.digest() + " old:open (4 bytes): in use by pid "), lines);
        assertTrue(lines.contains("keep " + used.digest() + " old:used (4 bytes): used 0s ago"), lines);
        assertEquals(6, dry.decisions().size(), "every image, with its reason");
        assertTrue(store.image(app1.digest()).isEmpty());
        store.syncIndex(); // blobs go once the index on disk no longer names them
        assertFalse(Files.exists(blob(root, app1.digest().hex())));
        assertTrue(store.image(held.digest()).isPresent() && store.image(open.digest()).isPresent());

        store.persistUses(true);
        store.close();
        clock.advance(Duration.ofDays(10));
        store = open();
        PruneReport later = store.prune(new PrunePolicy(OptionalInt.empty(), Optional.of(Duration.ofDays(30)), Optional.empty()), true);
        assertTrue(later.lines().contains("keep " + used.digest() + " old:used (4 bytes): used 10d ago"),
                "the last use was persisted: " + later.lines());
    }

    @Test
    void untilFreeTakesTheLeastRecentlyUsedOnlyWhileSpaceIsShort() throws Exception {
        ImageInfo older = add("a:1", "x".repeat(MIB));
        clock.advance(Duration.ofHours(1));
        ImageInfo newer = add("b:1", "y".repeat(MIB));
        PruneReport none = store.prune(new PrunePolicy(OptionalInt.empty(), Optional.empty(),
                Optional.of(new PrunePolicy.FreeTarget(0, true))), true);
        assertTrue(none.removed().isEmpty(), none.lines().toString());
        PruneReport all = store.prune(new PrunePolicy(OptionalInt.empty(), Optional.empty(),
                Optional.of(new PrunePolicy.FreeTarget(100, true))), true);
        assertEquals(java.util.Set.of(older.digest(), newer.digest()),
                java.util.Set.copyOf(all.removed().stream().map(ImageInfo::digest).toList()), "100% free is never reached: all go");
    }

    /** A shell holding the blob on descriptor 3, as a VM holds its base; returns once /proc shows it. */
    private Process holdOpen(Digest digest) throws Exception {
        Process process = new ProcessBuilder("sh", "-c", "exec 3<'" + store.imagePath(digest) + "'; sleep 30").start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30); // a shell's start on a loaded machine
        while (!store.openImages().containsKey(digest) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertTrue(store.openImages().containsKey(digest), "the shell has it open");
        return process;
    }

    private void stop(Process process) throws Exception {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly().waitFor();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!store.openImages().isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
    }

    private static List<String> describe(List<KeepReason> reasons) {
        return reasons.stream().map(KeepReason::describe).toList();
    }

    private ImageInfo add(String name, String content) throws IOException {
        return store.importStream(new ByteArrayInputStream(content.getBytes(StandardCharsets.UTF_8)),
                Reference.parse(name), n -> { });
    }

    /** A qcow2 header (version 2) naming a backing file: all the scanner reads. */
    static Path qcow2(Path file, String backing) throws IOException {
        byte[] name = backing.getBytes(StandardCharsets.UTF_8);
        ByteBuffer header = ByteBuffer.allocate(72 + name.length);
        header.putInt(0x514649fb).putInt(2).putLong(72).putInt(name.length).putInt(16).putLong(1 << 20);
        header.position(72);
        header.put(name);
        Files.write(file, header.array());
        return file;
    }

    /** A clock tests move by hand. */
    static final class MutableClock extends Clock {
        private Instant now;

        MutableClock(Instant start) {
            now = start;
        }

        void advance(Duration by) {
            now = now.plus(by);
        }

        @Override
        public Instant instant() {
            return now;
        }

        @Override
        public java.time.ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }
    }
}
