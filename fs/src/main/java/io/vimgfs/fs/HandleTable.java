package io.vimgfs.fs;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/** The open files of the mount by FUSE handle number. An unknown handle is {@code EBADF}. */
final class HandleTable {
    private final AtomicLong next = new AtomicLong(1);
    private final ConcurrentHashMap<Long, OpenFile> open = new ConcurrentHashMap<>();

    long add(OpenFile file) {
        long handle = next.getAndIncrement();
        open.put(handle, file);
        return handle;
    }

    OpenFile get(long handle) throws FsException {
        OpenFile file = open.get(handle);
        if (file == null) {
            throw new FsException(Errno.EBADF, "no open file with handle " + handle);
        }
        return file;
    }

    OpenFile remove(long handle) throws FsException {
        OpenFile file = open.remove(handle);
        if (file == null) {
            throw new FsException(Errno.EBADF, "no open file with handle " + handle);
        }
        return file;
    }

    int size() {
        return open.size();
    }

    /** Every open file, removed from the table (at unmount). */
    List<OpenFile> drain() {
        List<OpenFile> all = new ArrayList<>();
        for (Long handle : List.copyOf(open.keySet())) {
            OpenFile file = open.remove(handle);
            if (file != null) {
                all.add(file);
            }
        }
        return all;
    }
}
