package io.vimgfs.store.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.store.CrashPoint;
import io.vimgfs.store.CrashingImporter;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.Reference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A pull killed mid-download (the process halts: no finally blocks, no shutdown hooks) and run
 * again fetches only the ranges its range map lacks, and places the same bytes.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RangedPullCrashTest {
    private static final int MIB = 1 << 20;
    private static final int RANGES = 12;
    /** The halt comes at the third pass of the point: by then at least two ranges are recorded. */
    private static final int PASS = 3;

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, mode = EnumSource.Mode.MATCH_ALL, names = "RANGE_.*")
    void aPullKilledAfterSomeRangesResumesWithTheMissingOnes(CrashPoint point) throws Exception {
        TestImage image = TestImage.make(dir.resolve("source"), RANGES * MIB - 1000, MIB);
        Path root = dir.resolve("store");
        try (FakeRegistry registry = new FakeRegistry()) {
            image.serveFrom(registry);
            registry.delayMillis = 20;
            String source = RangedPullTest.source(registry).toString();

            CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), point + "@" + PASS, "pull",
                    source, "pulled:1", Long.toString(MIB), "2");

            assertEquals(CrashingImporter.HALT_STATUS, child.status(), child.output());
            String layer = image.digest().toString();
            long firstRun = registry.bytesSent(layer);
            assertTrue(firstRun < image.layer().length, "the first run stopped part-way (" + firstRun + " bytes)");
            registry.resetCounts();
            registry.delayMillis = 0;

            try (ImageStore store = ImageStore.open(root)) {
                new Puller(store, RangedPullTest.OPTIONS, new CredentialLookup(Optional.empty(), Optional.empty(),
                        Map.of(), dir), TransferProgress.NONE, new Puller.Ranges(MIB, MIB, 2))
                        .pull(RangedPullTest.source(registry), Reference.parse("pulled:1"), new Puller.Choice("amd64", "qemu"));

                assertArrayEquals(image.layer(), Files.readAllBytes(store.imagePath(image.digest())));
            }
            long recordedBeforeTheHalt = point == CrashPoint.RANGE_RECORDED ? PASS : PASS - 1;
            long secondRun = registry.bytesSent(layer);
            assertTrue(secondRun <= image.layer().length - recordedBeforeTheHalt * MIB,
                    "the rerun fetched " + secondRun + " bytes; at least " + recordedBeforeTheHalt
                            + " ranges were recorded before the halt at " + point);
            assertTrue(firstRun + secondRun >= image.layer().length, "every byte came at least once");
        }
        try (Stream<Path> left = Files.list(root.resolve(".vimgfs/staging"))) {
            assertEquals(List.of(), left.toList(), "the partial download is gone once placed");
        }
    }
}
