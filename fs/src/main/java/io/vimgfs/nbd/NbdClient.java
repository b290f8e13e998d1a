package io.vimgfs.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Asks an NBD server whether it serves an export ({@code OPT_INFO}, then {@code OPT_ABORT}): how
 * {@code pull --lazy} waits for the mount to take up a pull, and how {@code overlay} checks the
 * export it is about to name.
 */
public final class NbdClient {
    private NbdClient() {
    }

    /** Whether the server on {@code socket} answers for {@code export}; false when nothing listens. */
    public static boolean serves(Path socket, String export) {
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            channel.connect(UnixDomainSocketAddress.of(socket));
            ByteBuffer hello = read(channel, 18);
            if (hello.getLong() != NbdConnection.NBDMAGIC || hello.getLong() != NbdConnection.IHAVEOPT) {
                return false;
            }
            write(channel, ByteBuffer.allocate(4).putInt(NbdConnection.FLAG_FIXED_NEWSTYLE | NbdConnection.FLAG_NO_ZEROES).flip());
            byte[] name = export.getBytes(StandardCharsets.UTF_8);
            write(channel, ByteBuffer.allocate(16 + 4 + name.length + 2).putLong(NbdConnection.IHAVEOPT)
                    .putInt(NbdConnection.OPT_INFO).putInt(4 + name.length + 2).putInt(name.length).put(name).putShort((short) 0)
                    .flip());
            while (true) {
                ByteBuffer head = read(channel, 20);
                head.getLong();
                head.getInt();
                int type = head.getInt();
                read(channel, head.getInt());
                if (type == NbdConnection.REP_ACK) {
                    abort(channel);
                    return true;
                }
                if (type != NbdConnection.REP_INFO) {
                    abort(channel);
                    return false;
                }
            }
        } catch (IOException e) {
            return false;
        }
    }

    private static void abort(SocketChannel channel) throws IOException {
        write(channel, ByteBuffer.allocate(16).putLong(NbdConnection.IHAVEOPT).putInt(NbdConnection.OPT_ABORT).putInt(0).flip());
        read(channel, 20); // the acknowledgement, so the server is not left writing to a closed socket
    }

    private static ByteBuffer read(SocketChannel channel, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new EOFException();
            }
        }
        return buffer.flip();
    }

    private static void write(SocketChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }
}
