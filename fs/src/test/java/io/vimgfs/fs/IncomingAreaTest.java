package io.vimgfs.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vimgfs.store.ImageStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The quota of incoming/: a client cannot stage uploads or make directories without bound. */
class IncomingAreaTest {
    @TempDir
    Path dir;
    ImageStore store;
    IncomingArea area;

    @BeforeEach
    void open() throws IOException {
        store = ImageStore.open(dir.resolve("store"));
        area = new IncomingArea(store, Clock.systemUTC(), new IncomingArea.Limits(3, 2));
    }

    @AfterEach
    void close() throws IOException {
        area.closeAll();
        store.close();
    }

    @Test
    void stagedUploadsPastTheLimitAreRefusedWithEdquotUntilOneGoes() throws Exception {
        for (String name : List.of(".a", ".b", ".c")) {
            area.create(name).closed(); // touch incoming/.a: staged, never placed
        }
        FsException refused = assertThrows(FsException.class, () -> area.create(".d"));
        assertEquals(Errno.EDQUOT, refused.errno());
        assertEquals(3, stagingFiles(), "a refused create leaves no staging file");
        area.unlink(".a");
        area.create(".d").closed();
        assertEquals(List.of(".b", ".c", ".d"), area.list(""));
    }

    @Test
    void anUploadReplacedByANewCreateGivesBackItsPlace() throws Exception {
        for (int i = 0; i < 10; i++) {
            area.create(".same").closed(); // rsync retried ten times
        }
        area.create(".other").closed();
        assertEquals(2, stagingFiles());
    }

    @Test
    void directoriesPastTheLimitAreRefusedWithEdquotUntilOneIsRemoved() throws Exception {
        area.mkdir("a");
        area.mkdir("b");
        assertEquals(Errno.EDQUOT, assertThrows(FsException.class, () -> area.mkdir("c")).errno());
        area.rmdir("b");
        area.mkdir("c");
        assertEquals(List.of("a", "c"), area.list(""));
    }

    private long stagingFiles() throws IOException {
        try (Stream<Path> files = Files.list(dir.resolve("store/.vimgfs/staging"))) {
            return files.count();
        }
    }
}
