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
    /**
     * The most threads one mount serves with, however many requests are slow. Each costs a 132 KiB
     * request buffer and a stack; placements beyond this many at once queue in the kernel.
     */
    static final int MAX_THREADS = 64;

    private final LibFuse2 fuse = LibraryLoader.create(LibFuse2.class).failImmediately().load("fuse");
    private final Runtime runtime = Runtime.getRuntime(fuse);

    /**
     * Mounts with libfuse's option parsing and serves requests until the filesystem is unmounted,
     * with {@code threads} threads waiting for requests and more while requests are slow (see
     * {@link Workers}). {@code mounted} runs once the mount is live.
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
        new Workers(session, channel, bufferSize, threads).serveUntilUnmounted();
        fuse.fuse_teardown(handle, mountpointOut.getValue());
    }

    /**
     * The threads serving one mount. A slow request (a placement hashing and probing gigabytes at
     * a flush) keeps its thread, so a fixed set of threads could all be busy while a plain
     * {@code stat} waits: as libfuse's own multi-threaded loop does, the thread that takes the
     * last idle receiver's place starts another, so one thread is always waiting on /dev/fuse for
     * the next request, up to {@link #MAX_THREADS}; surplus threads end when they find more than
     * {@code idleWanted} others idle.
     */
    private final class Workers {
        private final Pointer session;
        private final Pointer channel;
        private final long bufferSize;
        private final int idleWanted;
        /** Guarded by this: threads alive, and those waiting to receive (a new one counts at once). */
        private int alive;
        private int idle;
        private int started;
        private boolean capLogged;

        Workers(Pointer session, Pointer channel, long bufferSize, int idleWanted) {
            this.session = session;
            this.channel = channel;
            this.bufferSize = bufferSize;
            this.idleWanted = Math.max(1, idleWanted);
        }

        void serveUntilUnmounted() {
            for (int i = 0; i < idleWanted; i++) {
                synchronized (this) {
                    alive++;
                    idle++;
                }
                start();
            }
            synchronized (this) {
                boolean interrupted = false;
                while (alive > 0) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
        }

        /** Starts a thread already counted alive and idle. */
        private void start() {
            String name;
            synchronized (this) {
                name = "vimgfs-fuse-" + started++;
            }
            try {
                Thread worker = new Thread(this::serve, name);
                worker.setDaemon(true);
                worker.start();
            } catch (OutOfMemoryError | RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "could not start FUSE thread " + name + ": " + e);
                ended();
            }
        }

        private synchronized void ended() {
            alive--;
            idle--;
            notifyAll();
        }

        /** A request arrived: this thread is busy; true if another must take its place as receiver. */
        private synchronized boolean busy() {
            idle--;
            if (idle > 0) {
                return false;
            }
            if (alive >= MAX_THREADS) {
                if (!capLogged) {
                    capLogged = true;
                    LOG.log(System.Logger.Level.WARNING, "all " + MAX_THREADS + " FUSE threads are busy: new requests wait");
                }
                return false;
            }
            alive++;
            idle++;
            return true;
        }

        /** The request is done: false if this thread is surplus and ends (it is then no longer counted). */
        private synchronized boolean idleAgain() {
            if (idle >= idleWanted) {
                alive--;
                notifyAll();
                return false;
            }
            idle++;
            return true;
        }

        private void serve() {
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
                if (busy()) {
                    start();
                }
                fuse.fuse_session_process(session, buffer, length, receivedOn.getPointer(0));
                if (!idleAgain()) {
                    return;
                }
            }
            ended();
        }
    }
}
