package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A lazy pull's record is what {@code pull --lazy} acknowledges before it returns: it reads back
 * whole, survives a halt at any step of its replacement (old or new, never torn), leaves only
 * what gc removes, and is forgotten once its disk is placed.
 */
class LazyPullsTest {
    @TempDir
    Path dir;

    static LazyPulls.Pull pull(String name) {
        try {
            byte[] manifest = ("{\"manifest of\":\"" + name + "\"}").getBytes(StandardCharsets.UTF_8);
            return new LazyPulls.Pull("docker://127.0.0.1:5000/vm/" + name, false, ImageName.parse(name),
                    Digest.of(BlobFiles.sha256(name.getBytes(StandardCharsets.UTF_8))), 3L << 20, manifest,
                    "{}".getBytes(StandardCharsets.UTF_8), new byte[] {1, 2, 3});
        } catch (InvalidNameException e) {
            throw new IllegalArgumentException(e);
        }
    }

    @Test
    void aRecordReadsBackWholeAndGoesWhenRemoved() throws Exception {
        try (ImageStore store = ImageStore.open(dir.resolve("store"))) {
            LazyPulls pulls = store.directory().lazyPulls();
            LazyPulls.Pull one = pull("vm:1");
            pulls.add(one);
            pulls.add(pull("vm:2"));
            Files.writeString(dir.resolve("store/.vimgfs/lazy-sha256-" + "0".repeat(64) + ".json"), "{torn");

            assertEquals(2, pulls.list().size(), "an unreadable record is skipped");
            assertEquals(3, pulls.layers().size(), "listed by file name, read or not");
            assertTrue(pulls.layers().contains(one.layer()));
            LazyPulls.Pull back = pulls.find(one.layer()).orElseThrow();
            assertEquals(one.source(), back.source());
            assertEquals(one.name(), back.name());
            assertEquals(one.size(), back.size());
            assertArrayEquals(one.manifest(), back.manifest());
            assertArrayEquals(one.chunks(), back.chunks());
            assertEquals(Optional.of(one.layer()), pulls.find(ImageName.parse("vm:1")).map(LazyPulls.Pull::layer));

            pulls.remove(one.layer());
            assertEquals(Optional.empty(), pulls.find(one.layer()));
            assertTrue(store.fsck(false, n -> { }).clean(), "records are not part of the layout");
        }
    }

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, names = "LAZY_.*", mode = EnumSource.Mode.MATCH_ALL)
    void aRecordHaltedAtAnyStepIsAbsentOrWhole(CrashPoint point) throws Exception {
        Path root = dir.resolve("store");
        ImageStore.open(root).close();

        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), point.name(), "lazy", "vm:1");

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), child.output());
        StoreFiles.assertConsistent(root); // opens, fsck clean, gc leaves no temporary file
        try (ImageStore store = ImageStore.open(root)) {
            List<LazyPulls.Pull> pulls = store.directory().lazyPulls().list();
            boolean renamed = point == CrashPoint.LAZY_RENAMED || point == CrashPoint.LAZY_SYNCED;
            assertEquals(renamed ? 1 : 0, pulls.size(), "the record is there once renamed into place, and whole");
            if (renamed) {
                assertArrayEquals(pull("vm:1").manifest(), pulls.get(0).manifest());
            }
        }
    }
}
