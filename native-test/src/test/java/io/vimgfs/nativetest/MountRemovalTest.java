package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** rm of names and images, and POSIX unlink semantics for an image someone is reading (SPEC §5). */
class MountRemovalTest {
    /** The mount deletes a removed image's blob within about a second of its last reader closing it. */
    private static final Duration GC_LIMIT = Duration.ofSeconds(5);

    @TempDir
    Path dir;

    @Test
    void rmOfATagRemovesThatNameOnlyAndTheLastNameTakesTheImage() {
        Path source = Fixtures.small(dir, "img.raw", 60_000, 21);
        String hex = Fixtures.sha256(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/cirros:0.6.2")).ok();
            Shell.run("cp", source.toString(), m.at("incoming/cirros:latest")).ok();
            Shell.run("mkdir", "-p", m.at("incoming/example.com/os")).ok();
            Shell.run("cp", source.toString(), m.at("incoming/example.com/os/fedora:40")).ok();

            Shell.run("rm", m.at("tags/cirros/0.6.2")).ok();
            assertFalse(m.exists("tags/cirros/0.6.2"));
            assertFalse(m.exists("by-name/cirros:0.6.2"));
            assertEquals(List.of("latest"), m.ls("tags/cirros"), "the other names stay");
            assertTrue(m.exists("by-name/example.com/os/fedora:40"));
            assertEquals(List.of(hex), m.ls("by-digest/sha256"));
            assertTrue(Shell.vimgfs(m.store, "inspect", "sha256:" + hex).ok().out().contains("cirros:latest"),
                    "the image keeps its other names");

            Shell.run("rm", m.at("by-name/cirros:latest")).ok();
            assertEquals(List.of("example.com"), m.ls("tags"), "a repository directory goes with its last name");
            assertTrue(m.exists("by-digest/sha256/" + hex));

            Shell.run("rm", m.at("tags/example.com/os/fedora/40")).ok();
            assertEquals(List.of(), m.ls("by-digest/sha256"), "the image goes with its last name");
            assertEquals(List.of(), m.ls("tags"));
            assertEquals(List.of(), m.ls("by-name"));
            Eventually.within(GC_LIMIT, "the blob is deleted from the store", () -> !Files.exists(m.blob(hex)));
            assertFalse(Shell.vimgfs(m.store, "ls").ok().out().contains(hex));
        }
    }

    @Test
    void rmOfAByDigestFileRemovesTheImageAndAllItsNames() {
        Path first = Fixtures.small(dir, "first.raw", 60_000, 22);
        Path second = Fixtures.small(dir, "second.raw", 60_000, 23);
        String hex = Fixtures.sha256(first);
        String other = Fixtures.sha256(second);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", first.toString(), m.at("incoming/a:1")).ok();
            Shell.run("cp", first.toString(), m.at("incoming/a:2")).ok();
            Shell.run("cp", first.toString(), m.at("incoming/c:1")).ok();
            Shell.run("cp", second.toString(), m.at("incoming/b:1")).ok();

            Shell.run("rm", m.at("by-digest/sha256/" + hex)).ok();

            assertEquals(List.of(other), m.ls("by-digest/sha256"));
            assertEquals(List.of("b"), m.ls("tags"));
            assertEquals(List.of("b:1"), m.ls("by-name"));
            Eventually.within(GC_LIMIT, "the blob is deleted from the store", () -> !Files.exists(m.blob(hex)));
            assertTrue(Files.exists(m.blob(other)), "the other image's blob stays");
        }
    }

    @Test
    void anImageRemovedByDigestWhileBeingReadStaysReadableUntilClosed() throws IOException {
        assertReadableAcrossRemoval("by-digest/sha256/%s", "by-digest/sha256/%s");
    }

    @Test
    void anImageWhoseLastNameIsRemovedWhileBeingReadStaysReadableUntilClosed() throws IOException {
        assertReadableAcrossRemoval("tags/big/1", "tags/big/1");
    }

    /** Reads half of a 64 MiB image, has another process rm it, reads the rest: every byte arrives. */
    private void assertReadableAcrossRemoval(String openPattern, String removePattern) throws IOException {
        Path source = Fixtures.random(64);
        String hex = Fixtures.sha256(source);
        long size = Files.size(source);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", source.toString(), m.at("incoming/big:1")).ok();
            MessageDigest digest = Fixtures.sha256();
            long read;
            try (FileChannel reader = FileChannel.open(m.path(String.format(openPattern, hex)), StandardOpenOption.READ)) {
                read = readInto(reader, digest, size / 2);

                Shell.run("rm", m.at(String.format(removePattern, hex))).ok();
                // A reader has it open: it stays, nameless, under by-digest/ (issue 11), and no .fuse_hidden file appears.
                Eventually.within(GC_LIMIT, "the open image stays listed, nameless", () -> m.ls("by-digest/sha256").equals(List.of(hex)));
                assertEquals(List.of(), m.ls("tags"));

                read += readInto(reader, digest, Long.MAX_VALUE);
            }
            assertEquals(size, read, "the reader got every byte");
            assertEquals(hex, HexFormat.of().formatHex(digest.digest()), "the reader got the image's bytes");
            Shell.vimgfs(m.store, "gc").ok();
            Eventually.within(GC_LIMIT, "the next gc after the reader closed deletes the blob", () -> !Files.exists(m.blob(hex)));
            // when the gc process (not the mount) collected it, the mount shows that within about a second (README)
            Eventually.within(GC_LIMIT, "the mount lists the collected image no more", () -> m.ls("by-digest/sha256").isEmpty());
            assertTrue(m.isMounted());
        }
    }

    private static long readInto(FileChannel channel, MessageDigest digest, long limit) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
        long total = 0;
        while (total < limit) {
            buffer.clear().limit((int) Math.min(buffer.capacity(), limit - total));
            int n = channel.read(buffer);
            if (n < 0) {
                break;
            }
            digest.update(buffer.flip());
            total += n;
        }
        return total;
    }
}
