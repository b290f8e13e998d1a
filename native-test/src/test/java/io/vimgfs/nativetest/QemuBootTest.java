package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real boot: qemu-system-x86_64 (TCG) boots a Debian kernel whose only disk comes from the
 * mount, read-only from a by-digest base or read-write through an overlay made outside the store,
 * and the guest prints on its serial console what it read from that disk. The kernel, initramfs
 * and disk come from scripts/make-boot-kit (Debian packages only), cached in /var/cache/vimgfs-boot-kit
 * (or $VIMGFS_BOOT_KIT) so that only the first run on a machine pays for the download.
 */
class QemuBootTest {
    /** A boot takes about 6 s under TCG on a 2-vCPU machine; this bounds a hung one. */
    private static final Duration BOOT_LIMIT = Duration.ofSeconds(180);
    private static final Duration KIT_LIMIT = Duration.ofMinutes(15);
    private static final Pattern BOOT_OK = Pattern.compile(
            "VIMGFS-BOOT-OK marker=(\\S+) sha256=([0-9a-f]{64}) sectors=(\\d+) ro=([01])");
    private static final long DISK_BYTES = 8L << 20;
    private static final long WRITE_OFFSET = 6L << 20;

    private static Path kit;
    private static String marker;
    private static String diskSha256;

    @TempDir
    Path dir;

    @BeforeAll
    static void buildKit() throws IOException {
        MountedStore.requireFuse();
        String configured = System.getenv("VIMGFS_BOOT_KIT");
        kit = Path.of(configured != null && !configured.isBlank() ? configured : "/var/cache/vimgfs-boot-kit");
        Path script = Path.of("..", "scripts", "make-boot-kit").toAbsolutePath().normalize();
        long start = System.nanoTime();
        Shell.Result made = Shell.run(KIT_LIMIT, Map.of(), List.of(script.toString(), kit.toString()));
        if (made.exit() != 0) {
            fail("scripts/make-boot-kit " + kit + " failed (exit " + made.exit() + ")\n" + made.err() + made.out());
        }
        System.out.printf("boot kit ready in %s after %d ms%n", kit, (System.nanoTime() - start) / 1_000_000);
        marker = Files.readString(kit.resolve("marker")).strip();
        diskSha256 = Files.readString(kit.resolve("disk.sha256")).strip();
    }

    @Test
    void bootsFromRawBaseInStoreReadOnly() {
        Path raw = kit.resolve("disk.raw");
        String hex = Shell.sha256(raw);
        assertEquals(diskSha256, hex);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", raw.toString(), m.at("incoming/vimgfs-boot:raw")).ok();
            String image = m.at("by-digest/sha256/" + hex);
            assertTrue(m.exists("by-digest/sha256/" + hex), "cp placed the disk at by-digest/sha256/" + hex + "\n" + m.log());

            Boot boot = boot(List.of("-drive", "file=" + image + ",format=raw,if=virtio,readonly=on"), null);

            Matcher ok = boot.okLine();
            assertAll(
                    () -> assertEquals(marker, ok.group(1), "the guest read the marker at 1 MiB"),
                    () -> assertEquals(hex, ok.group(2), "the guest's sha256 of /dev/vda is the image's digest"),
                    () -> assertEquals(String.valueOf(DISK_BYTES / 512), ok.group(3), "the guest sees the whole disk"),
                    () -> assertEquals("1", ok.group(4), "readonly=on reaches the guest"),
                    () -> assertEquals(0, boot.exit(), "qemu powered off cleanly\n" + boot.console()));
            assertEquals(hex, Shell.sha256(Path.of(image)), "the base is unchanged");
        }
    }

    @Test
    void bootsFromQcow2BaseInStoreReadOnly() {
        Path qcow2 = kit.resolve("disk.qcow2");
        String hex = Shell.sha256(qcow2);
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", qcow2.toString(), m.at("incoming/vimgfs-boot:qcow2")).ok();
            String image = m.at("by-digest/sha256/" + hex);
            assertTrue(m.exists("by-digest/sha256/" + hex), "cp placed the disk at by-digest/sha256/" + hex + "\n" + m.log());

            Boot boot = boot(List.of("-drive", "file=" + image + ",format=qcow2,if=virtio,readonly=on"), null);

            Matcher ok = boot.okLine();
            assertAll(
                    () -> assertEquals(marker, ok.group(1), "the guest read the marker at 1 MiB"),
                    () -> assertEquals(diskSha256, ok.group(2), "the guest read the disk's whole content"),
                    () -> assertEquals(String.valueOf(DISK_BYTES / 512), ok.group(3)),
                    () -> assertEquals("1", ok.group(4), "readonly=on reaches the guest"),
                    () -> assertEquals(0, boot.exit(), "qemu powered off cleanly\n" + boot.console()));
            assertEquals(hex, Shell.sha256(Path.of(image)), "the base is unchanged");
        }
    }

    @Test
    void bootsReadWriteOverlayMadeOutsideTheStoreOnByDigestBase() throws IOException {
        Path qcow2 = kit.resolve("disk.qcow2");
        String hex = Shell.sha256(qcow2);
        String token = "vimgfs-wrote-" + Long.toHexString(System.nanoTime());
        Path overlay = dir.resolve("vm1.qcow2");
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", qcow2.toString(), m.at("incoming/vimgfs-boot:qcow2")).ok();
            String base = m.at("by-digest/sha256/" + hex);
            assertTrue(m.exists("by-digest/sha256/" + hex), "cp placed the disk at by-digest/sha256/" + hex + "\n" + m.log());
            Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, overlay.toString()).ok();

            Boot boot = boot(List.of("-drive", "file=" + overlay + ",format=qcow2,if=virtio"), token);

            Matcher ok = boot.okLine();
            assertAll(
                    () -> assertEquals(marker, ok.group(1), "the guest read the marker at 1 MiB through the overlay"),
                    () -> assertEquals(diskSha256, ok.group(2), "the guest read the base's whole content through the overlay"),
                    () -> assertEquals("0", ok.group(4), "the overlay is writable"),
                    () -> assertTrue(boot.console().contains("VIMGFS-WRITE-OK " + token),
                            "the guest wrote to the overlay and read it back\n" + boot.console()),
                    () -> assertEquals(0, boot.exit(), "qemu powered off cleanly\n" + boot.console()));

            assertEquals(hex, Shell.sha256(Path.of(base)), "the base in the store is unchanged: sha256sum still prints its name");
            assertEquals(hex, Shell.sha256(m.blob(hex)), "the blob in the store is unchanged");
            Path flat = dir.resolve("vm1.raw");
            Shell.run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", overlay.toString(), flat.toString()).ok();
            assertEquals(token + "\n", readAt(flat, WRITE_OFFSET, token.length() + 1), "the guest's write is in the overlay");
            assertEquals(marker + "\n", readAt(flat, 1L << 20, marker.length() + 1), "the base's bytes show through the overlay");
            assertNotEquals(0, Shell.run("qemu-img", "compare", "-q", base, overlay.toString()).exit(),
                    "the overlay differs from its base");
        }
    }

    /**
     * The daemon is killed (SIGKILL) once QEMU has the disk open, before the guest has read it:
     * the guest still boots and reads every byte, because its disk is the store's file.
     */
    @Test
    void aGuestFinishesBootingWhenTheDaemonIsKilledMidBoot() throws IOException {
        Path qcow2 = kit.resolve("disk.qcow2");
        String hex = Shell.sha256(qcow2);
        Path overlay = dir.resolve("vm1.qcow2");
        try (MountedStore m = MountedStore.mount(dir)) {
            Shell.run("cp", qcow2.toString(), m.at("incoming/vimgfs-boot:qcow2")).ok();
            Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", m.at("by-digest/sha256/" + hex),
                    overlay.toString()).ok();
            String blob = m.blob(hex).toAbsolutePath().normalize().toString();
            long daemon = m.daemonPid();

            Boot boot = boot(List.of("-drive", "file=" + overlay + ",format=qcow2,if=virtio"), null, qemu -> {
                Eventually.within(Duration.ofSeconds(90), "qemu opens the base",
                        () -> Shell.sh("ls -l /proc/" + qemu.pid() + "/fd").out().contains(blob));
                Shell.run("kill", "-KILL", Long.toString(daemon)).ok();
                Shell.sh("sync; echo 3 > /proc/sys/vm/drop_caches").ok();
            });

            Matcher ok = boot.okLine();
            assertAll(
                    () -> assertEquals(marker, ok.group(1), "the guest read the marker after the daemon died"),
                    () -> assertEquals(diskSha256, ok.group(2), "the guest read the base's whole content"),
                    () -> assertEquals(0, boot.exit(), "qemu powered off cleanly\n" + boot.console()),
                    () -> assertTrue(ProcessHandle.of(daemon).map(p -> !p.isAlive()).orElse(true), "the daemon was dead"));
        }
    }

    /**
     * Issue 19: a guest boots from an image pulled with {@code --lazy} from a peer's
     * {@code vimgfs serve} (the image pushed into it with its chunk index), its disk a qcow2
     * overlay whose backing is the mount's NBD export with reconnect-delay; the guest reads the
     * whole disk through NBD and finds the image's digest.
     */
    @Test
    void aGuestBootsFromALazyPullThroughAnOverlayOnTheNbdExport() throws Exception {
        Path raw = kit.resolve("disk.raw");
        String hex = Shell.sha256(raw);
        Path source = dir.resolve("source");
        Shell.vimgfs(source, "import", raw.toString(), "vimgfs-boot:raw").ok();
        Path log = dir.resolve("serve.log");
        Process server = new ProcessBuilder(Shell.java(), "-jar", Shell.jar().toString(), "--store", dir.resolve("peer").toString(),
                "serve", "--listen", "127.0.0.1:0").redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        try {
            Pattern listening = Pattern.compile("vimgfs serve: http://(127\\.0\\.0\\.1:\\d+)/v2/");
            Eventually.within(Duration.ofSeconds(30), "vimgfs serve listening",
                    () -> listening.matcher(Shell.run("cat", log.toString()).out()).find() || !server.isAlive());
            Matcher at = listening.matcher(Files.readString(log));
            assertTrue(at.find(), "vimgfs serve did not start: " + Files.readString(log));
            String peer = "docker://" + at.group(1) + "/boot/disk:1";
            Shell.vimgfs(source, "push", "--quiet", "--tls-verify=false", "vimgfs-boot:raw", peer).ok();
            Path overlay = dir.resolve("vm-lazy.qcow2");
            try (MountedStore m = MountedStore.mount(dir)) {
                Shell.vimgfs(m.store, "pull", "--lazy", "--quiet", "--tls-verify=false", peer, "boot:lazy").ok();
                String written = Shell.vimgfs(m.store, "overlay", "--nbd", "boot:lazy", overlay.toString()).ok().out();
                assertTrue(written.contains("over NBD at"), written);

                Boot boot = boot(List.of("-drive", "file=" + overlay + ",format=qcow2,if=virtio,werror=stop,rerror=stop"), null);

                Matcher ok = boot.okLine();
                assertAll(
                        () -> assertEquals(marker, ok.group(1), "the guest read the marker through NBD"),
                        () -> assertEquals(hex, ok.group(2), "the guest's sha256 of /dev/vda is the image's digest"),
                        () -> assertEquals(0, boot.exit(), "qemu powered off cleanly\n" + boot.console()));
                Eventually.within(Duration.ofSeconds(30), "the lazy image is placed",
                        () -> Shell.vimgfs(m.store, "ls").ok().out().lines().anyMatch(l -> l.startsWith("boot:lazy ")
                                && l.contains(hex)));
            }
        } finally {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** What one boot printed, and how qemu ended. */
    record Boot(String console, int exit, long millis) {
        Matcher okLine() {
            Matcher matcher = BOOT_OK.matcher(console);
            if (!matcher.find()) {
                fail("no VIMGFS-BOOT-OK line on the console:\n" + console);
            }
            return matcher;
        }
    }

    /**
     * Boots the kit's kernel with the given drive options, waits for the guest to power off within
     * {@link #BOOT_LIMIT}, and always kills qemu. With a token, the guest also writes it at 6 MiB.
     */
    private Boot boot(List<String> drive, String token) {
        return boot(drive, token, qemu -> { });
    }

    /** What to do to the host while a guest boots. */
    private interface DuringBoot {
        void act(Process qemu) throws Exception;
    }

    private Boot boot(List<String> drive, String token, DuringBoot duringBoot) {
        String append = "console=ttyS0 panic=-1 quiet" + (token == null ? "" : " vimgfs.write=" + token);
        List<String> command = new ArrayList<>(List.of("qemu-system-x86_64", "-machine", "accel=tcg", "-m", "256",
                "-nographic", "-no-reboot", "-nic", "none",
                "-kernel", kit.resolve("vmlinuz").toString(), "-initrd", kit.resolve("initrd.img").toString(),
                "-append", append));
        command.addAll(drive);
        Path console = dir.resolve("console-" + System.nanoTime() + ".txt");
        Process qemu = null;
        long start = System.nanoTime();
        try {
            qemu = new ProcessBuilder(command)
                    .redirectErrorStream(true).redirectOutput(console.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
            duringBoot.act(qemu);
            boolean exited = qemu.waitFor(BOOT_LIMIT.toMillis(), TimeUnit.MILLISECONDS);
            long millis = (System.nanoTime() - start) / 1_000_000;
            String output = Files.readString(console, StandardCharsets.ISO_8859_1);
            if (!exited) {
                fail("qemu did not power off within " + BOOT_LIMIT + ": " + String.join(" ", command) + "\nconsole:\n" + output);
            }
            System.out.printf("qemu boot (%s) took %d ms%n", String.join(" ", drive), millis);
            if (output.contains("VIMGFS-BOOT-FAIL")) {
                fail("the guest failed: " + String.join(" ", command) + "\nconsole:\n" + output);
            }
            return new Boot(output, qemu.exitValue(), millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted booting " + command, e);
        } catch (Exception e) {
            throw new AssertionError("cannot run " + command, e);
        } finally {
            if (qemu != null) {
                qemu.descendants().forEach(ProcessHandle::destroyForcibly);
                qemu.destroyForcibly();
                try {
                    qemu.waitFor(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    private static String readAt(Path file, long offset, int length) throws IOException {
        try (RandomAccessFile in = new RandomAccessFile(file.toFile(), "r")) {
            byte[] bytes = new byte[length];
            in.seek(offset);
            in.readFully(bytes);
            return new String(bytes, StandardCharsets.ISO_8859_1);
        }
    }
}
