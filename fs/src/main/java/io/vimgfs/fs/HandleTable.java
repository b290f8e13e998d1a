package io.vimgfs.fs;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The open files of the mount by FUSE handle number, and the paths they were opened at. An
 * unknown handle is {@code EBADF}.
 */
final class HandleTable {
    private final AtomicLong next = new AtomicLong(1);
    private final ConcurrentHashMap<Long, Entry> open = new ConcurrentHashMap<>();
    /**
     * Handles by the path they were opened at, for the files that answer for it: the kernel asks
     * fstat(2) by inode without the file handle, and libfuse 2 turns that into a getattr of the
     * path, which must still answer once the file's last name is gone (SPEC §5).
     */
    private final ConcurrentHashMap<String, Set<Long>> openedAt = new ConcurrentHashMap<>();

    private record Entry(OpenFile file, String path) {
    }

    long add(OpenFile file, String path) {
        long handle = next.getAndIncrement();
        open.put(handle, new Entry(file, path));
        if (file.answersForPath()) {
            // compute, not computeIfAbsent: a release emptying the set cannot drop it under us
            openedAt.compute(path, (p, handles) -> {
                Set<Long> all = handles != null ? handles : ConcurrentHashMap.newKeySet();
                all.add(handle);
                return all;
            });
        }
        return handle;
    }

    OpenFile get(long handle) throws FsException {
        Entry entry = open.get(handle);
        if (entry == null) {
            throw unknown(handle);
        }
        return entry.file();
    }

    /** The attributes of a file still open at {@code path}, whether or not the path has a name. */
    Optional<Attr> attrAt(String path) {
        Set<Long> handles = openedAt.get(path);
        if (handles == null) {
            return Optional.empty();
        }
        for (long handle : handles) {
            Entry entry = open.get(handle);
            if (entry != null) { // else released between the two looks: try the next
                return Optional.of(entry.file().attr());
            }
        }
        return Optional.empty();
    }

    OpenFile remove(long handle) throws FsException {
        Entry entry = open.remove(handle);
        if (entry == null) {
            throw unknown(handle);
        }
        if (entry.file().answersForPath()) {
            openedAt.computeIfPresent(entry.path(), (p, handles) -> handles.remove(handle) && handles.isEmpty() ? null : handles);
        }
        return entry.file();
    }

    int size() {
        return open.size();
    }

    /** Every open file, removed from the table (at unmount). */
    List<OpenFile> drain() {
        List<OpenFile> all = new ArrayList<>();
        for (Long handle : List.copyOf(open.keySet())) {
            Entry entry = open.remove(handle);
            if (entry != null) {
                all.add(entry.file());
            }
        }
        openedAt.clear();
        return all;
    }

    private static FsException unknown(long handle) {
        return new FsException(Errno.EBADF, "no open file with handle " + handle);
    }
}
