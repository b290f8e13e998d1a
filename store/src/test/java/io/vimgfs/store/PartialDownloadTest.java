package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The partial download of one blob: what a rerun resumes, and when gc takes it. */
class PartialDownloadTest {
    private static final Digest BLOB = new Digest("ab".repeat(32));
    private static final long SIZE = 5L * MIB + 7;

    @TempDir
    Path dir;

    @Test
    void aRerunFindsTheRangesRecordedAndOnlyThose() throws IOException {
        try (ImageStore store = ImageStore.open(dir)) {
            try (PartialDownload partial = store.resumeDownload(BLOB, SIZE, MIB)) {
                assertEquals(6, partial.rangeCount());
                fill(partial, 0);
                partial.complete(0);
                fill(partial, 5);
                partial.complete(5);
                fill(partial, 2); // written, never recorded: a crash before its fsync and bit
            }
            try (PartialDownload again = store.resumeDownload(BLOB, SIZE, MIB)) {
                assertTrue(again.isDone(0));
                assertTrue(again.isDone(5));
                assertFalse(again.isDone(2), "an unrecorded range is fetched again");
                assertEquals(MIB + 7, again.bytesDone());
            }
            try (PartialDownload otherSizes = store.resumeDownload(BLOB, SIZE, 2 * MIB)) {
                assertEquals(0, otherSizes.bytesDone(), "a map of other range sizes is not trusted: start over");
            }
        }
    }

    @Test
    void oneDownloadOfABlobAtATime() throws IOException {
        try (ImageStore store = ImageStore.open(dir); PartialDownload first = store.resumeDownload(BLOB, SIZE, MIB)) {
            IOException e = assertThrows(IOException.class, () -> store.resumeDownload(BLOB, SIZE, MIB));
            assertTrue(e.getMessage().contains("another pull"), e.getMessage());
        }
    }

    @Test
    void gcKeepsAnAbandonedDownloadForADayAndOneBeingWrittenAlways() throws IOException {
        Instant now = Instant.now();
        try (ImageStore store = ImageStore.open(dir, at(now))) {
            try (PartialDownload partial = store.resumeDownload(BLOB, SIZE, MIB)) {
                fill(partial, 1);
                partial.complete(1);
            }
            assertEquals(List.of(), store.collectGarbage(false).removals(), "abandoned a moment ago: kept for a rerun");
        }
        Instant later = now.plus(PartialDownload.ABANDONED_AFTER).plus(Duration.ofMinutes(1));
        try (ImageStore store = ImageStore.open(dir, at(later))) {
            try (PartialDownload running = store.resumeDownload(BLOB, SIZE, MIB)) {
                assertEquals(List.of(), store.collectGarbage(false).removals(), "a running pull's download is kept");
                assertEquals(List.of(), store.removeStaleStaging(), "by the mount's sweep too");
            }
            List<GcReport.Removal> removed = store.collectGarbage(false).removals();

            assertEquals(2, removed.size(), removed.toString());
            assertTrue(removed.get(0).reason().contains("left unfinished for more than 24 hours"), removed.toString());
            assertEquals(List.of(), StoreFiles.stagingFiles(dir));
        }
    }

    @Test
    void aRangeMapWhoseDownloadWasPlacedGoesAtOnce() throws IOException {
        try (ImageStore store = ImageStore.open(dir)) {
            PartialDownload partial = store.resumeDownload(BLOB, SIZE, MIB);
            partial.upload().abandon(); // as placing moves the staging file into blobs/
            partial.close();

            List<GcReport.Removal> removed = store.collectGarbage(false).removals();

            assertEquals(1, removed.size(), removed.toString());
            assertTrue(removed.get(0).file().getFileName().toString().endsWith(".ranges"), removed.toString());
        }
    }

    private static StoreOptions at(Instant instant) {
        return StoreOptions.defaults().withClock(Clock.fixed(instant, ZoneOffset.UTC));
    }

    private static void fill(PartialDownload partial, int range) throws IOException {
        byte[] bytes = StoreFiles.bytes("range " + range, (int) partial.length(range));
        partial.write(ByteBuffer.wrap(bytes), partial.start(range));
    }
}
