package io.vimgfs.fs;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.byref.IntByReference;
import jnr.ffi.byref.PointerByReference;

/**
 * Serves FUSE requests on threads this JVM created, instead of libfuse's own loop.
 *
 * <p>Why: jffi attaches a native thread to the JVM for each upcall and detaches it after, until
 * that thread has made 1000 of them; with libfuse's worker threads that cost (tens of
 * microseconds) was paid on nearly every request (JFR showed one thread start per upcall).
 * Threads started by Java are attached for good, so an upcall costs only the call. The mount,
 * option parsing and teardown are still libfuse's ({@code fuse_setup}, {@code fuse_teardown});
 * the loop is {@code fuse_chan_recv} + {@code fuse_session_process}, as libfuse's own.
 */
final class FuseLoop {
    private static final System.Logger LOG = System.getLogger(FuseLoop.class.getName());

    /** The part of libfuse 2.9's API the loop needs. */
    public interface LibFuse2 {
        Pointer fuse_setup(int argc, String[] argv, Pointer operations, long operationsSize,
                PointerByReference mountpoint, IntByReference multithreaded, Pointer userData);

        void fuse_teardown(Pointer fuse, Pointer mountpoint);

        Pointer fuse_get_session(Pointer fuse);

        Pointer fuse_session_next_chan(Pointer session, Pointer channel);

        long fuse_chan_bufsize(Pointer channel);

        /** {@code channel} points to a {@code struct fuse_chan *}, which libfuse may replace. */
        int fuse_chan_recv(Pointer channel, Pointer buffer, long size);

        void fuse_session_process(Pointer session, Pointer buffer, long length, Pointer channel);

        int fuse_session_exited(Pointer session);

        void fuse_session_exit(Pointer session);
    }

    private static final int EINTR = 4;
    private static final int EAGAIN = 11;
    private static final int ENOENT = 2;

    private final LibFuse2 fuse = LibraryLoader.create(LibFuse2.class).failImmediately().load("fuse");
    private final Runtime runtime = Runtime.getRuntime(fuse);

    /**
     * Mounts with libfuse's option parsing and serves requests on {@code threads} threads until
     * the filesystem is unmounted. {@code mounted} runs once the mount is live.
     */
    void run(FuseAdapter adapter, Path mountpoint, List<String> options, boolean debug, int threads, Runnable mounted) {
        List<String> argv = new ArrayList<>(List.of(adapter.fsName(), "-f"));
        if (debug) {
            argv.add("-d");
        }
        argv.add(mountpoint.toString());
        argv.addAll(options);
        PointerByReference mountpointOut = new PointerByReference();
        IntByReference multithreaded = new IntByReference();
        Pointer handle = fuse.fuse_setup(argv.size(), argv.toArray(String[]::new), adapter.operations(),
                adapter.operationsSize(), mountpointOut, multithreaded, null);
        if (handle == null) {
            throw new IllegalStateException("libfuse could not mount " + mountpoint + " (see its message above)");
        }
        Pointer session = fuse.fuse_get_session(handle);
        Pointer channel = fuse.fuse_session_next_chan(session, null);
        long bufferSize = fuse.fuse_chan_bufsize(channel);
        mounted.run();
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            Thread worker = new Thread(() -> serve(session, channel, bufferSize), "vimgfs-fuse-" + i);
            worker.setDaemon(true);
            worker.start();
            workers.add(worker);
        }
        for (Thread worker : workers) {
            joinQuietly(worker);
        }
        fuse.fuse_teardown(handle, mountpointOut.getValue());
    }

    private void serve(Pointer session, Pointer channel, long bufferSize) {
        Pointer buffer = Memory.allocateDirect(runtime, (int) bufferSize);
        Pointer receivedOn = Memory.allocateDirect(runtime, runtime.addressSize());
        while (fuse.fuse_session_exited(session) == 0) {
            receivedOn.putPointer(0, channel);
            int length = fuse.fuse_chan_recv(receivedOn, buffer, bufferSize);
            if (length == -EINTR || length == -EAGAIN || length == -ENOENT) {
                continue; // interrupted, or a request the kernel already dropped
            }
            if (length <= 0) {
                if (length < 0) {
                    LOG.log(System.Logger.Level.WARNING, "reading /dev/fuse failed: errno " + -length);
                }
                fuse.fuse_session_exit(session); // unmounted (ENODEV) or broken: stop every worker
                break;
            }
            fuse.fuse_session_process(session, buffer, length, receivedOn.getPointer(0));
        }
    }

    private static void joinQuietly(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
