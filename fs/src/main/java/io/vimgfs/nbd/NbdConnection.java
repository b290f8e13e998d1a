package io.vimgfs.nbd;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.Semaphore;

/**
 * One client of an {@link NbdServer}: the option haggling of fixed newstyle ({@code OPT_GO},
 * {@code OPT_INFO}, {@code OPT_LIST}, {@code OPT_EXPORT_NAME}, {@code OPT_ABORT}; anything else,
 * structured replies included, is answered {@code ERR_UNSUP}), then transmission with simple
 * replies: {@code CMD_READ} (up to {@value #MAX_IN_FLIGHT} at once, answered as each is ready),
 * {@code CMD_DISC}, and {@code EPERM} for anything that would write. A read the export cannot
 * answer with verified bytes is answered {@code EIO}, never with other bytes.
 */
final class NbdConnection implements Closeable {
    private static final System.Logger LOG = System.getLogger(NbdConnection.class.getName());
    static final long NBDMAGIC = 0x4e42444d41474943L;
    static final long IHAVEOPT = 0x49484156454f5054L;
    static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
    static final int REQUEST_MAGIC = 0x25609513;
    static final int SIMPLE_REPLY_MAGIC = 0x67446698;

    static final int FLAG_FIXED_NEWSTYLE = 1;
    static final int FLAG_NO_ZEROES = 2;
    static final int FLAG_HAS_FLAGS = 1;
    static final int FLAG_READ_ONLY = 1 << 1;
    static final int FLAG_CAN_MULTI_CONN = 1 << 8;

    static final int OPT_EXPORT_NAME = 1;
    static final int OPT_ABORT = 2;
    static final int OPT_LIST = 3;
    static final int OPT_INFO = 6;
    static final int OPT_GO = 7;
    static final int REP_ACK = 1;
    static final int REP_SERVER = 2;
    static final int REP_INFO = 3;
    static final int REP_ERR_UNSUP = 0x80000001;
    static final int REP_ERR_INVALID = 0x80000003;
    static final int REP_ERR_UNKNOWN = 0x80000006;
    static final int INFO_EXPORT = 0;
    static final int INFO_BLOCK_SIZE = 3;

    static final int CMD_READ = 0;
    static final int CMD_WRITE = 1;
    static final int CMD_DISC = 2;
    static final int EPERM = 1;
    static final int EIO = 5;
    static final int EINVAL = 22;

    private static final int MAX_OPTION = 64 << 10;
    /** QEMU asks at most 32 MiB per request; the block size info says so. */
    static final int MAX_READ = 32 << 20;
    private static final int MAX_IN_FLIGHT = 8;
    private static final int TRANSMISSION_FLAGS = FLAG_HAS_FLAGS | FLAG_READ_ONLY | FLAG_CAN_MULTI_CONN;

    private final SocketChannel channel;
    private final NbdServer.Exports exports;
    private final Executor threads;
    private final Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
    private final Object replies = new Object();

    NbdConnection(SocketChannel channel, NbdServer.Exports exports, Executor threads) {
        this.channel = channel;
        this.exports = exports;
        this.threads = threads;
    }

    void run() {
        try {
            Optional<NbdExport> export = handshake();
            if (export.isPresent()) {
                transmit(export.get());
            }
        } catch (EOFException | ClosedChannelException e) {
            // the client went away; QEMU reconnects if it wants to
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "nbd: a client failed: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            close();
        }
    }

    private Optional<NbdExport> handshake() throws IOException {
        write(ByteBuffer.allocate(18).putLong(NBDMAGIC).putLong(IHAVEOPT)
                .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip());
        int clientFlags = readFully(4).getInt();
        if ((clientFlags & FLAG_FIXED_NEWSTYLE) == 0) {
            throw new IOException("the client does not speak fixed newstyle NBD");
        }
        boolean noZeroes = (clientFlags & FLAG_NO_ZEROES) != 0;
        while (true) {
            ByteBuffer head = readFully(16);
            if (head.getLong() != IHAVEOPT) {
                throw new IOException("bad option magic");
            }
            int option = head.getInt();
            int length = head.getInt();
            if (length < 0 || length > MAX_OPTION) {
                throw new IOException("an option of " + (length & 0xffffffffL) + " bytes");
            }
            ByteBuffer data = readFully(length);
            switch (option) {
                case OPT_EXPORT_NAME -> {
                    Optional<NbdExport> export = exports.find(StandardCharsets.UTF_8.decode(data).toString());
                    if (export.isPresent()) {
                        ByteBuffer info = ByteBuffer.allocate(noZeroes ? 10 : 134).putLong(export.get().size())
                                .putShort((short) TRANSMISSION_FLAGS);
                        write(info.position(info.capacity()).flip());
                    }
                    return export; // an unknown name: the protocol's only answer is to close
                }
                case OPT_ABORT -> {
                    try {
                        reply(option, REP_ACK, ByteBuffer.allocate(0));
                    } catch (IOException e) {
                        // the client may close without waiting for the acknowledgement
                    }
                    return Optional.empty();
                }
                case OPT_LIST -> list(option);
                case OPT_INFO, OPT_GO -> {
                    Optional<NbdExport> export = info(option, data);
                    if (option == OPT_GO && export.isPresent()) {
                        return export;
                    }
                }
                default -> reply(option, REP_ERR_UNSUP, ByteBuffer.allocate(0));
            }
        }
    }

    private void list(int option) throws IOException {
        for (String name : exports.names()) {
            byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
            reply(option, REP_SERVER, ByteBuffer.allocate(4 + bytes.length).putInt(bytes.length).put(bytes).flip());
        }
        reply(option, REP_ACK, ByteBuffer.allocate(0));
    }

    /** Answers OPT_INFO or OPT_GO: the export's size and flags, and block sizes when asked. */
    private Optional<NbdExport> info(int option, ByteBuffer data) throws IOException {
        int nameLength = data.remaining() >= 4 ? data.getInt() : -1;
        if (nameLength < 0 || nameLength > data.remaining() - 2) {
            reply(option, REP_ERR_INVALID, message("malformed request"));
            return Optional.empty();
        }
        byte[] name = new byte[nameLength];
        data.get(name);
        boolean blockSizes = false;
        for (int requests = data.getShort() & 0xffff; requests > 0 && data.remaining() >= 2; requests--) {
            blockSizes |= data.getShort() == INFO_BLOCK_SIZE;
        }
        String exportName = new String(name, StandardCharsets.UTF_8);
        Optional<NbdExport> export = exports.find(exportName);
        if (export.isEmpty()) {
            reply(option, REP_ERR_UNKNOWN, message("no export named '" + exportName + "'"));
            return Optional.empty();
        }
        reply(option, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT).putLong(export.get().size())
                .putShort((short) TRANSMISSION_FLAGS).flip());
        if (blockSizes) {
            reply(option, REP_INFO, ByteBuffer.allocate(14).putShort((short) INFO_BLOCK_SIZE).putInt(1).putInt(4096)
                    .putInt(MAX_READ).flip());
        }
        reply(option, REP_ACK, ByteBuffer.allocate(0));
        return export;
    }

    private void transmit(NbdExport export) throws IOException, InterruptedException {
        while (true) {
            ByteBuffer request = readFully(28);
            if (request.getInt() != REQUEST_MAGIC) {
                throw new IOException("bad request magic");
            }
            request.getShort(); // command flags: none is advertised that changes a read
            int type = request.getShort() & 0xffff;
            long handle = request.getLong();
            long offset = request.getLong();
            long length = request.getInt() & 0xffffffffL;
            if (type == CMD_READ) {
                if (length > MAX_READ || offset < 0 || offset + length > export.size()) {
                    replyError(handle, EINVAL);
                    continue;
                }
                inFlight.acquire();
                threads.execute(() -> serveRead(export, handle, offset, (int) length));
            } else if (type == CMD_DISC) {
                inFlight.acquire(MAX_IN_FLIGHT); // the reads already asked are answered first
                return;
            } else if (type == CMD_WRITE) {
                skip(length);
                replyError(handle, EPERM);
            } else {
                replyError(handle, EPERM); // trim, write zeroes, and anything else: a read-only export
            }
        }
    }

    private void serveRead(NbdExport export, long handle, long offset, int length) {
        try {
            Optional<java.nio.channels.FileChannel> file = Optional.empty();
            ByteBuffer data = null;
            int error = 0;
            try {
                file = export.fileFor(offset, length);
                if (file.isEmpty()) {
                    data = ByteBuffer.allocateDirect(length);
                    export.read(data, offset);
                    data.flip();
                }
            } catch (IOException | RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "nbd: read of " + length + " bytes at " + offset + " failed: "
                        + e.getMessage());
                error = EIO;
            }
            ByteBuffer head = ByteBuffer.allocate(16).putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(handle).flip();
            synchronized (replies) {
                write(head);
                if (error == 0 && data != null) {
                    write(data);
                } else if (error == 0) {
                    send(file.get(), offset, length);
                }
            }
        } catch (IOException e) {
            close(); // the client is gone, or the file failed after the header went: QEMU reconnects and asks again
        } finally {
            inFlight.release();
        }
    }

    private void send(java.nio.channels.FileChannel file, long offset, int length) throws IOException {
        for (long sent = 0; sent < length; ) {
            long n = file.transferTo(offset + sent, length - sent, channel);
            if (n <= 0) {
                throw new IOException("the disk's file ended at byte " + (offset + sent));
            }
            sent += n;
        }
    }

    private void replyError(long handle, int error) throws IOException {
        synchronized (replies) {
            write(ByteBuffer.allocate(16).putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(handle).flip());
        }
    }

    private void reply(int option, int type, ByteBuffer data) throws IOException {
        write(ByteBuffer.allocate(20).putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(data.remaining()).flip());
        write(data);
    }

    private static ByteBuffer message(String text) {
        return ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
    }

    private ByteBuffer readFully(int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new EOFException();
            }
        }
        return buffer.flip();
    }

    private void skip(long length) throws IOException {
        ByteBuffer scratch = ByteBuffer.allocate(64 << 10);
        for (long left = length; left > 0; ) {
            scratch.clear().limit((int) Math.min(scratch.capacity(), left));
            int n = channel.read(scratch);
            if (n < 0) {
                throw new EOFException();
            }
            left -= n;
        }
    }

    private void write(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            // closing a socket: nothing to do
        }
    }
}
