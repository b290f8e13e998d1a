package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The journal: what a commit appends is what opening replays, a torn or corrupt tail is dropped,
 * and a store opened from index.json plus journal equals the same changes applied directly.
 */
class JournalTest {
    /** Five images; the last two are overlays of the first. */
    private static final List<StoredImage> IMAGES = List.of(image(0, Optional.empty()), image(1, Optional.empty()),
            image(2, Optional.empty()), image(3, Optional.of(digest("layer", 0))), image(4, Optional.of(digest("layer", 0))));
    private static final List<ImageName> NAMES = Stream.of("a:1", "a:2", "b:1", "c/d:1", "e:latest", "f:x")
            .map(JournalTest::name).toList();

    @TempDir
    Path dir;

    @Test
    void framesReadBackAsWritten() throws IOException {
        Path file = dir.resolve("journal");
        List<Change> changes = List.of(new Change.AddImage(IMAGES.get(3)), new Change.SetName(NAMES.get(3), IMAGES.get(3).layer()),
                new Change.RemoveName(NAMES.get(0)), new Change.RemoveImage(IMAGES.get(1).layer()),
                new Change.HoldChanged("vm-1", IMAGES.get(2).layer(), true));
        try (Journal journal = Journal.open(file)) {
            long end = journal.append(Journal.START, 7, changes, p -> { });
            end = journal.append(end, 8, List.of(new Change.RemoveName(NAMES.get(3))), p -> { });
            Journal.Contents read = journal.read(Journal.START);
            assertEquals(Optional.empty(), read.damage());
            assertEquals(end, read.end());
            assertEquals(List.of(7L, 8L), read.frames().stream().map(Journal.Frame::sequence).toList());
            assertEquals(changes, read.frames().get(0).changes());
        }
    }

    @Test
    void aTornOrCorruptTailIsDroppedAndTheFramesBeforeItKept() throws IOException {
        Path file = dir.resolve("journal");
        long first;
        long end;
        try (Journal journal = Journal.open(file)) {
            first = journal.append(Journal.START, 1, List.of(new Change.RemoveName(NAMES.get(0))), p -> { });
            end = journal.append(first, 2, List.of(new Change.RemoveName(NAMES.get(1))), p -> { });
        }
        byte[] whole = Files.readAllBytes(file);
        for (long cut = first + 1; cut < end; cut++) {
            Files.write(file, java.util.Arrays.copyOf(whole, (int) cut));
            Journal.Contents torn = Journal.readOnly(file).read(Journal.START);
            assertEquals(1, torn.frames().size(), "cut at " + cut);
            assertEquals(first, torn.end());
            assertTrue(torn.damage().isPresent());
        }
        byte[] flipped = whole.clone();
        flipped[(int) end - 3] ^= 0x40;
        Files.write(file, flipped);
        Journal.Contents corrupt = Journal.readOnly(file).read(Journal.START);
        assertEquals(1, corrupt.frames().size());
        assertTrue(corrupt.damage().get().contains("checksum"), corrupt.damage().get());
    }

    /** One commit of a generated history, and what may happen to the files after it. */
    record Step(List<Integer> ops, boolean compact, boolean crashBeforeTruncate) {
    }

    @Provide
    Arbitrary<List<Step>> histories() {
        Arbitrary<Integer> op = Arbitraries.integers().between(0, 4 * 30 - 1);
        Arbitrary<Step> step = Combinators.combine(op.list().ofMinSize(1).ofMaxSize(5), Arbitraries.integers().between(0, 9),
                Arbitraries.of(true, false)).as((ops, c, crash) -> new Step(ops, c == 0, crash));
        return step.list().ofMinSize(1).ofMaxSize(25);
    }

    /**
     * The property: a random history committed through the journal (with index rewrites, some
     * interrupted before the journal was truncated, and a torn frame at the end) and opened again
     * is the catalog the same changes make applied directly.
     */
    @Property(tries = 150)
    void aHistoryReplayedFromTheJournalEqualsTheSameChangesAppliedDirectly(@ForAll("histories") List<Step> history)
            throws IOException {
        Path root = Files.createTempDirectory("journal-property");
        try {
            try (ImageStore store = ImageStore.open(root)) {
                store.syncIndex();
            }
            Path journalFile = root.resolve(".vimgfs/journal");
            Catalog direct = Catalog.EMPTY;
            long sequence = 0;
            try (Journal journal = Journal.open(journalFile)) {
                long end = Journal.START;
                for (Step step : history) {
                    List<Change> changes = new ArrayList<>();
                    Catalog working = direct;
                    for (int op : step.ops()) {
                        List<Change> one = change(working, op);
                        working = working.apply(one);
                        changes.addAll(one);
                    }
                    direct = direct.apply(changes).committed();
                    end = journal.append(end, ++sequence, changes, p -> { });
                    if (step.compact()) {
                        BlobFiles.writeSynced(root.resolve("index.json"), OciLayout.indexJson(direct, sequence));
                        if (!step.crashBeforeTruncate()) {
                            journal.truncate(Journal.START);
                            end = Journal.START;
                        }
                    }
                }
                byte[] torn = Journal.encodeFrame(sequence + 1, List.of(new Change.RemoveName(NAMES.get(0))));
                Files.write(journalFile, java.util.Arrays.copyOf(torn, torn.length - 1), StandardOpenOption.APPEND);
            }
            try (ImageStore store = ImageStore.open(root)) {
                assertSame(direct, store);
            }
            try (ImageStore store = ImageStore.open(root)) {
                assertSame(direct, store); // and again from the index the first open's close rewrote
            }
        } finally {
            try (Stream<Path> all = Files.walk(root)) {
                for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
    }

    /** Operation {@code op} as changes the store could make of this catalog (it never names a missing image). */
    private static List<Change> change(Catalog catalog, int op) {
        int kind = op % 4;
        StoredImage image = IMAGES.get(op / 4 % IMAGES.size());
        ImageName name = NAMES.get(op / 4 % NAMES.size());
        boolean present = catalog.image(image.layer()).isPresent();
        boolean baseMissing = image.backing().isPresent() && catalog.image(image.backing().get()).isEmpty();
        switch (kind) {
            case 0:
                if (baseMissing) {
                    return List.of(new Change.HoldChanged("someone", image.layer(), true));
                }
                return present ? List.of(new Change.SetName(name, image.layer()))
                        : List.of(new Change.AddImage(image), new Change.SetName(name, image.layer()));
            case 1:
                return List.of(new Change.RemoveName(name));
            case 2:
                return List.of(new Change.RemoveImage(image.layer()));
            default:
                return present ? List.of(new Change.SetName(NAMES.get((op / 4 + 1) % NAMES.size()), image.layer()))
                        : List.of(new Change.RemoveName(name));
        }
    }

    private static void assertSame(Catalog direct, ImageStore store) {
        assertEquals(new TreeMap<>(direct.names()), new TreeMap<>(store.names()));
        Set<Digest> images = direct.images().stream().map(StoredImage::layer).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(images, store.list().stream().map(ImageInfo::digest).collect(Collectors.toCollection(TreeSet::new)));
        for (StoredImage image : direct.images()) {
            ImageInfo info = store.image(image.layer()).orElseThrow();
            assertEquals(image.info(direct.namesOf(image.layer())), info);
        }
    }

    private static StoredImage image(int i, Optional<Digest> backing) {
        return new StoredImage(digest("layer", i), 1000 + i, backing.isPresent() ? ImageFormat.QCOW2 : ImageFormat.RAW,
                1 << 20, backing.isPresent() ? 65536 : 0, backing, Instant.parse("2026-01-0" + (i + 1) + "T00:00:00.5Z"),
                digest("manifest", i), 400 + i, digest("config", i));
    }

    private static Digest digest(String kind, int i) {
        return new Digest(StoreFiles.sha256((kind + i).getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    private static ImageName name(String text) {
        try {
            return ImageName.parse(text);
        } catch (InvalidNameException e) {
            throw new IllegalArgumentException(e);
        }
    }

}
