package io.vimgfs.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Instant;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The handle table alone: handle numbers, EBADF, and the paths open images still answer at. */
class HandleTableTest {
    private static final String PATH = "/by-digest/sha256/" + "a".repeat(64);
    private final HandleTable table = new HandleTable();

    private static OpenFile image(long size) {
        return new OpenFile.ImageHandle(new Attr(Attr.Kind.FILE, 0444, size, 0, 7, Instant.EPOCH, 1), null, null, null);
    }

    @Test
    void anUnknownOrReleasedHandleIsEbadf() throws Exception {
        assertEquals(Errno.EBADF, assertThrows(FsException.class, () -> table.get(1)).errno());
        long handle = table.add(image(1), PATH);
        table.remove(handle);
        assertEquals(Errno.EBADF, assertThrows(FsException.class, () -> table.get(handle)).errno());
        assertEquals(Errno.EBADF, assertThrows(FsException.class, () -> table.remove(handle)).errno());
    }

    @Test
    void aPathAnswersUntilTheLastFileOpenedAtItIsReleased() throws Exception {
        long first = table.add(image(10), PATH);
        long second = table.add(image(10), PATH);
        table.remove(first);
        assertEquals(10, table.attrAt(PATH).orElseThrow().size());
        table.remove(second);
        assertEquals(Optional.empty(), table.attrAt(PATH));
    }

    @Test
    void unmountDrainsEveryFileAndEveryPath() {
        table.add(image(1), PATH);
        table.add(image(2), "/by-digest/sha256/" + "b".repeat(64));
        assertEquals(2, table.drain().size());
        assertEquals(0, table.size());
        assertEquals(Optional.empty(), table.attrAt(PATH));
    }
}
