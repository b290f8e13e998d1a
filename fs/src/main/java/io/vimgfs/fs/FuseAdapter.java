package io.vimgfs.fs;

import com.kenai.jffi.MemoryIO;
import io.vimgfs.store.StoreStats;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;
import jnr.ffi.Struct;
import jnr.ffi.types.mode_t;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;
import ru.serce.jnrfuse.struct.Statvfs;
import ru.serce.jnrfuse.struct.Timespec;

/**
 * The thin dispatcher between libfuse and {@link VimgFs}: converts native structs, calls the
 * filesystem, and turns every failure into a negative errno. No exception reaches native code.
 */
final class FuseAdapter extends FuseStubFS {
    private static final System.Logger LOG = System.getLogger(FuseAdapter.class.getName());
    /** fuse_file_info: the word holding the direct_io:1, keep_cache:1 … bitfields (libfuse 2.9). */
    private static final int FILE_INFO_BITS_OFFSET = 20;
    private static final int KEEP_CACHE_BIT = 1 << 1;
    private static final MemoryIO MEMORY = MemoryIO.getInstance();
    private static final ByteBuffer DOT = DirectoryNames.encode(List.of(".")).get(0);
    private static final ByteBuffer DOT_DOT = DirectoryNames.encode(List.of("..")).get(0);

    /** Set once before the mount by {@link #serve}; callbacks start only after it. */
    private VimgFs fs;
    private final String fsName;
    private final long uid;
    private final long gid;

    /** One filesystem call; returns 0 or a byte count. */
    private interface Call {
        int run() throws Exception;
    }

    /**
     * Binds libfuse and builds the callback table (jnr generates a class per callback, a third of
     * a second), which {@link Mounter} does while the store loads.
     */
    FuseAdapter(String fsName, long uid, long gid) {
        this.fsName = fsName;
        this.uid = uid;
        this.gid = gid;
    }

    @Override
    protected String getFSName() {
        return fsName;
    }

    FuseAdapter serve(VimgFs filesystem) {
        this.fs = filesystem;
        return this;
    }

    String fsName() {
        return fsName;
    }

    /** libfuse's {@code struct fuse_operations}, filled by jnr-fuse with our callbacks. */
    Pointer operations() {
        return Struct.getMemory(fuseOperations);
    }

    long operationsSize() {
        return Struct.size(fuseOperations);
    }

    private static final Metrics METRICS = Metrics.process();
    /**
     * Answers logged only at debug level: absent names, absent xattrs, and requests the caller
     * falls back from (cp's hole punching); EDQUOT is logged once, by IncomingArea.
     */
    private static final Set<Errno> ROUTINE = EnumSet.of(Errno.ENOENT, Errno.ENODATA, Errno.ENOSYS, Errno.EOPNOTSUPP,
            Errno.EDQUOT);

    private static int call(String operation, String path, Call call) {
        long start = System.nanoTime();
        try {
            int result = call.run();
            METRICS.request(operation, start, result, null, path);
            return result;
        } catch (Throwable failure) {
            Errno errno = Errors.errnoOf(failure);
            METRICS.request(operation, start, -errno.value(), errno, path);
            if (!Errors.expected(failure)) {
                LOG.log(System.Logger.Level.WARNING, operation + " " + path + " failed unexpectedly", failure);
            } else if (!ROUTINE.contains(errno)) {
                LOG.log(System.Logger.Level.INFO, () -> operation + " " + path + ": " + errno + ": " + failure.getMessage());
            } else {
                LOG.log(System.Logger.Level.DEBUG, () -> operation + " " + path + ": " + errno);
            }
            return -errno.value();
        }
    }

    @Override
    public int getattr(String path, FileStat stat) {
        return call("getattr", path, () -> fill(stat, fs.getattr(path)));
    }

    @Override
    public int fgetattr(String path, FileStat stat, FuseFileInfo fi) {
        return call("fgetattr", path, () -> fill(stat, fs.fgetattr(path, fi.fh.get())));
    }

    private int fill(FileStat stat, Attr attr) {
        stat.st_mode.set(attr.mode());
        stat.st_size.set(attr.size());
        stat.st_blocks.set(attr.blocks());
        stat.st_blksize.set(4096);
        stat.st_ino.set(attr.inode());
        stat.st_nlink.set(attr.links());
        stat.st_uid.set(uid);
        stat.st_gid.set(gid);
        long seconds = attr.modified().getEpochSecond();
        long nanos = attr.modified().getNano();
        setTime(stat.st_mtim, seconds, nanos);
        setTime(stat.st_ctim, seconds, nanos);
        setTime(stat.st_atim, seconds, nanos);
        return 0;
    }

    private static void setTime(Timespec time, long seconds, long nanos) {
        time.tv_sec.set(seconds);
        time.tv_nsec.set(nanos);
    }

    @Override
    public int readlink(String path, Pointer buf, @size_t long size) {
        return call("readlink", path, () -> {
            byte[] target = fs.readlink(path).getBytes(StandardCharsets.UTF_8);
            int length = (int) Math.min(target.length, size - 1);
            buf.put(0, target, 0, length);
            buf.putByte(length, (byte) 0);
            return 0;
        });
    }

    @Override
    public int readdir(String path, Pointer buf, FuseFillDir filter, @off_t long offset, FuseFileInfo fi) {
        return call("readdir", path, () -> {
            List<String> entries = fs.readdir(path);
            filter.apply(buf, DOT.duplicate(), null, 0);
            filter.apply(buf, DOT_DOT.duplicate(), null, 0);
            for (ByteBuffer entry : DirectoryNames.of(entries)) {
                if (filter.apply(buf, entry, null, 0) != 0) {
                    break;
                }
            }
            return 0;
        });
    }

    @Override
    public int open(String path, FuseFileInfo fi) {
        return call("open", path, () -> opened(fi, fs.open(path, fi.flags.get())));
    }

    @Override
    public int create(String path, @mode_t long mode, FuseFileInfo fi) {
        return call("create", path, () -> opened(fi, fs.create(path, (int) (mode & 0777))));
    }

    private static int opened(FuseFileInfo fi, VimgFs.Opened opened) {
        fi.fh.set(opened.handle());
        if (opened.keepCache()) {
            // jnr-fuse models the bitfields as padding; set keep_cache in the struct's memory.
            Pointer memory = Struct.getMemory(fi);
            memory.putInt(FILE_INFO_BITS_OFFSET, memory.getInt(FILE_INFO_BITS_OFFSET) | KEEP_CACHE_BIT);
        }
        return 0;
    }

    @Override
    public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        return call("read", path, () -> fs.read(fi.fh.get(), MEMORY.newDirectByteBuffer(buf.address(), (int) size), offset));
    }

    @Override
    public int write(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        return call("write", path, () -> fs.write(fi.fh.get(), MEMORY.newDirectByteBuffer(buf.address(), (int) size), offset));
    }

    @Override
    public int truncate(String path, @off_t long size) {
        return call("truncate", path, () -> {
            fs.truncate(path, size);
            return 0;
        });
    }

    @Override
    public int ftruncate(String path, @off_t long size, FuseFileInfo fi) {
        return call("ftruncate", path, () -> {
            fs.ftruncate(fi.fh.get(), size);
            return 0;
        });
    }

    @Override
    public int flush(String path, FuseFileInfo fi) {
        return call("flush", path, () -> {
            fs.flush(fi.fh.get());
            return 0;
        });
    }

    @Override
    public int release(String path, FuseFileInfo fi) {
        return call("release", path, () -> {
            fs.release(fi.fh.get());
            return 0;
        });
    }

    @Override
    public int fsync(String path, int isdatasync, FuseFileInfo fi) {
        return 0; // placement fsyncs; until then a staging file has nothing durable to promise
    }

    @Override
    public int unlink(String path) {
        return call("unlink", path, () -> {
            fs.unlink(path);
            return 0;
        });
    }

    @Override
    public int mkdir(String path, @mode_t long mode) {
        return call("mkdir", path, () -> {
            fs.mkdir(path);
            return 0;
        });
    }

    @Override
    public int rmdir(String path) {
        return call("rmdir", path, () -> {
            fs.rmdir(path);
            return 0;
        });
    }

    @Override
    public int rename(String from, String to) {
        return call("rename", from + " -> " + to, () -> {
            fs.rename(from, to);
            return 0;
        });
    }

    @Override
    public int symlink(String target, String path) {
        return call("symlink", path, () -> {
            fs.symlink(path);
            return 0;
        });
    }

    @Override
    public int link(String from, String to) {
        return call("link", to, () -> {
            fs.link(to);
            return 0;
        });
    }

    @Override
    public int mknod(String path, @mode_t long mode, long rdev) {
        return call("mknod", path, () -> {
            fs.mknod(path);
            return 0;
        });
    }

    @Override
    public int chmod(String path, @mode_t long mode) {
        return setAttributes("chmod", path);
    }

    @Override
    public int chown(String path, long uid, long gid) {
        return setAttributes("chown", path);
    }

    @Override
    public int utimens(String path, Timespec[] timespec) {
        return setAttributes("utimens", path);
    }

    private int setAttributes(String operation, String path) {
        return call(operation, path, () -> {
            fs.setAttributes(path);
            return 0;
        });
    }

    @Override
    public int fallocate(String path, int mode, @off_t long off, @off_t long length, FuseFileInfo fi) {
        return call("fallocate", path, () -> {
            fs.fallocate(fi.fh.get(), mode);
            return 0;
        });
    }

    @Override
    public int getxattr(String path, String name, Pointer value, @size_t long size) {
        return call("getxattr", path, () -> {
            byte[] bytes = fs.getxattr(path, name);
            if (size == 0) {
                return bytes.length;
            }
            if (size < bytes.length) {
                return -Errno.ERANGE.value();
            }
            value.put(0, bytes, 0, bytes.length);
            return bytes.length;
        });
    }

    @Override
    public int listxattr(String path, Pointer list, @size_t long size) {
        return call("listxattr", path, () -> {
            StringBuilder names = new StringBuilder();
            fs.listxattr(path).forEach(name -> names.append(name).append('\0'));
            byte[] bytes = names.toString().getBytes(StandardCharsets.UTF_8);
            if (size == 0) {
                return bytes.length;
            }
            if (size < bytes.length) {
                return -Errno.ERANGE.value();
            }
            list.put(0, bytes, 0, bytes.length);
            return bytes.length;
        });
    }

    @Override
    public int setxattr(String path, String name, Pointer value, @size_t long size, int flags) {
        return call("setxattr", path, () -> {
            fs.setxattr(path);
            return 0;
        });
    }

    @Override
    public int removexattr(String path, String name) {
        return setxattr(path, name, null, 0, 0);
    }

    /** The part of libc that statfs needs: the store filesystem's own numbers, inodes included. */
    public interface LibC {
        int statvfs(String path, Pointer buf);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");

    /** {@code df} and {@code df -i} report the filesystem the store lives on (SPEC §2). */
    @Override
    public int statfs(String path, Statvfs stbuf) {
        return call("statfs", path, () -> {
            if (LIBC.statvfs(fs.storeRoot().toString(), Struct.getMemory(stbuf)) == 0) {
                return 0;
            }
            StoreStats stats = fs.statfs();
            long block = Math.max(512, stats.blockSize());
            stbuf.f_bsize.set(block);
            stbuf.f_frsize.set(block);
            stbuf.f_blocks.set(stats.totalBytes() / block);
            stbuf.f_bfree.set(stats.freeBytes() / block);
            stbuf.f_bavail.set(stats.availableBytes() / block);
            stbuf.f_namemax.set(255);
            return 0;
        });
    }

    @Override
    public void destroy(Pointer initResult) {
        try {
            fs.close();
        } catch (Throwable e) {
            LOG.log(System.Logger.Level.WARNING, "closing the filesystem", e);
        }
    }
}
