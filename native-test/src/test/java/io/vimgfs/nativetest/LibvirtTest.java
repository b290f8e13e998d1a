package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * libvirt as an operator uses it (libvirt 9 and QEMU 7 from Debian, TCG, loopback only): dir pools
 * on the mount list and report sizes, {@code vol-create-as} in {@code incoming/} is refused
 * cleanly, a domain on a stored image and one on an overlay outside the store, each with the
 * README's {@code <disk>} XML exactly as printed there, boot and read their disks (the boot kit's
 * marker on their serial consoles) through a restart of the daemon, and a new domain starts at once
 * on the new mount; the overlay's domain, shut off, boots again after its base lost its last tag
 * and gc ran (libvirt's image directory is held). It installs nothing (scripts/setup test does; missing libvirt fails the test
 * when VIMGFS_REQUIRE_FUSE=1, as missing FUSE does); it starts virtlogd and libvirtd itself when
 * systemd is not running and stops them after, and gives {@code /dev/kvm} back as it was.
 */
class LibvirtTest {
    private static final Pattern BOOT_OK = Pattern.compile("VIMGFS-BOOT-OK marker=(\\S+) sha256=([0-9a-f]{64}) sectors=(\\d+) ro=([01])");
    /** Where the README's examples put the mount and the overlay; the test substitutes its own. */
    private static final String README_BASE = "/mnt/images/by-digest/sha256/<hex>";
    private static final String README_OVERLAY = "/var/lib/libvirt/images/vm1.qcow2";
    /**
     * Three TCG guests share two cores here: each boots in about 10 s, alone. The machine is shared
     * with other builds, so the limit bounds a hung guest, not a slow one.
     */
    private static final Duration BOOT_LIMIT = Duration.ofSeconds(300);
    private static final List<String> DOMAINS = List.of("vimgfs-ro", "vimgfs-overlay", "vimgfs-new");
    private static final List<String> POOLS = List.of("vimgfs-digest", "vimgfs-tags", "vimgfs-names", "vimgfs-incoming");

    @Test
    void poolsListTheMountAndDomainsBootThroughARestartOfTheDaemon() throws Exception {
        MountedStore.requireFuse();
        requireLibvirt();
        Path kit = Path.of(System.getenv().getOrDefault("VIMGFS_BOOT_KIT", "/var/cache/vimgfs-boot-kit"));
        Shell.run(Duration.ofMinutes(15), Map.of(), List.of(Path.of("..", "scripts", "make-boot-kit").toAbsolutePath().normalize().toString(),
                kit.toString())).ok();
        // libvirt-qemu must traverse every parent of the store, the mountpoint and the overlay: not a 0700 @TempDir
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "vimgfs-libvirt-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path images = Files.createTempDirectory(Path.of("/var/lib/libvirt/images"), "vimgfs-test-");
        String kvmBefore = Shell.run("stat", "-c", "%U:%G %a", "/dev/kvm").out().strip();
        List<Long> started = new ArrayList<>();
        List<String> domains = new ArrayList<>();
        Path vms = dir.resolve("vms");
        try {
            Files.setPosixFilePermissions(images, PosixFilePermissions.fromString("rwxr-xr-x"));
            Files.createDirectories(vms);
            for (String file : List.of("vmlinuz", "initrd.img")) {
                Files.copy(kit.resolve(file), vms.resolve(file));
            }
            bootThroughARestart(kit, dir, vms, images, started, kvmBefore, domains);
        } finally {
            for (long pid : started) {
                Shell.run("kill", Long.toString(pid));
            }
            if (!kvmBefore.equals(Shell.run("stat", "-c", "%U:%G %a", "/dev/kvm").out().strip())) {
                String[] owner = kvmBefore.split("[: ]");
                Shell.run("chown", owner[0] + ":" + owner[1], "/dev/kvm");
                Shell.run("chmod", owner[2], "/dev/kvm");
            }
            Shell.run("chattr", "-R", "-f", "-i", dir.toString()); // the store's blobs are immutable
            Shell.run("rm", "-rf", dir.toString(), images.toString());
        }
    }

    /** The mount, the pools and the three domains; the caller cleans up after libvirt and the files. */
    private static void bootThroughARestart(Path kit, Path dir, Path vms, Path images, List<Long> started, String kvmBefore,
            List<String> domains) throws Exception {
        String marker = Files.readString(kit.resolve("marker")).strip();
        String content = Files.readString(kit.resolve("disk.sha256")).strip();
        try (MountedStore m = MountedStore.mount(dir, "allow_other")) {
            startLibvirt(started, kvmBefore);
            removeLeftovers();
            Shell.run("cp", kit.resolve("disk.qcow2").toString(), m.at("incoming/boot:qcow2")).ok();
            String hex = Shell.sha256(kit.resolve("disk.qcow2"));
            try {
                pool("vimgfs-digest", m.at("by-digest/sha256"));
                pool("vimgfs-tags", m.at("tags/boot"));
                pool("vimgfs-names", m.at("by-name"));
                pool("vimgfs-incoming", m.at("incoming"));
                String info = virsh("vol-info", "--pool", "vimgfs-digest", hex).ok().out();
                assertTrue(info.contains("Capacity:       8.00 MiB"), "capacity is the virtual size\n" + info);
                assertTrue(virsh("vol-list", "vimgfs-tags").ok().out().contains(m.at("tags/boot/qcow2")));

                Shell.Result create = virsh("vol-create-as", "vimgfs-incoming", "new:1", "10M", "--format", "raw");
                assertTrue(create.exit() != 0 && create.err().contains("Operation not permitted"), "refused cleanly\n" + create.err());
                assertTrue(!m.exists("tags/new/1"), "nothing was stored");

                String base = m.at("by-digest/sha256/" + hex);
                Path overlay = images.resolve("vm1.qcow2");
                Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, overlay.toString()).ok();
                String readOnlyDisk = readmeDisk(README_BASE).replace(README_BASE, base);
                String overlayDisk = readmeDisk(README_OVERLAY).replace(README_OVERLAY, overlay.toString());
                String token = "vimgfs-wrote-" + Long.toHexString(System.nanoTime());

                // Paused, QEMU has opened every disk and backing file but the guests have read
                // nothing yet: every read they make comes after the daemon they opened through is gone.
                define(domains, "vimgfs-ro", vms, readOnlyDisk, null);
                define(domains, "vimgfs-overlay", vms, overlayDisk, token);
                virsh("start", "--paused", "vimgfs-ro").ok();
                virsh("start", "--paused", "vimgfs-overlay").ok();
                String blob = m.blobPath(hex);
                for (String domain : List.of("vimgfs-ro", "vimgfs-overlay")) {
                    assertTrue(openFiles(domain).contains(blob), domain + "'s QEMU holds the store's blob, not a path in the mount\n"
                            + openFiles(domain));
                }

                long daemon = m.daemonPid();
                long stopping = System.nanoTime();
                Shell.run("kill", "-TERM", Long.toString(daemon)).ok();
                Eventually.within(Duration.ofSeconds(30), "the daemon exits after SIGTERM",
                        () -> ProcessHandle.of(daemon).map(p -> !p.isAlive()).orElse(true));
                System.out.printf("the daemon exited %d ms after SIGTERM%n", (System.nanoTime() - stopping) / 1_000_000);
                m.start("allow_other");
                define(domains, "vimgfs-new", vms, readOnlyDisk, null);
                virsh("start", "vimgfs-new").ok(); // at once: no retry, no wait for the new mount to settle
                virsh("resume", "vimgfs-ro").ok();
                virsh("resume", "vimgfs-overlay").ok();

                long deadline = System.nanoTime() + BOOT_LIMIT.toNanos();
                for (String domain : domains) {
                    awaitShutOff(domain, deadline);
                }
                for (String domain : domains) {
                    String console = read(vms.resolve(domain + ".log"));
                    Matcher ok = BOOT_OK.matcher(console);
                    assertTrue(ok.find(), domain + " printed no marker\n" + console);
                    assertEquals(marker, ok.group(1), domain + " read the marker at 1 MiB");
                    assertEquals(content, ok.group(2), domain + " read its whole disk");
                    assertEquals(domain.equals("vimgfs-overlay") ? "0" : "1", ok.group(4), domain + ": <readonly/> or not reaches the guest");
                    assertEquals("shut off (shutdown)", stateWithReason(domain), domain + " powered off cleanly\n" + console);
                }
                assertTrue(read(vms.resolve("vimgfs-overlay.log")).contains("VIMGFS-WRITE-OK " + token), "the guest wrote to its overlay");
                assertEquals(hex, Shell.sha256(m.blob(hex)), "the base in the store is unchanged");

                // Every domain is shut off, so nothing has the base open. Its last tag goes, gc runs:
                // the overlay under libvirt's directory (held automatically) keeps it, and the VM boots again.
                Shell.run("rm", m.at("tags/boot/qcow2")).ok();
                Shell.vimgfs(m.store, "gc").ok();
                assertTrue(Files.exists(m.blob(hex)), "the shut-off overlay's base is kept in the store");
                assertTrue(m.exists("by-digest/sha256/" + hex), "and stays under by-digest/, nameless");
                String kept = Shell.vimgfs(m.store, "ls", "--all").ok().out();
                assertTrue(kept.contains(hex) && kept.contains(images.getParent().toString()),
                        "ls --all says the libvirt directory keeps it\n" + kept);
                Files.delete(vms.resolve("vimgfs-overlay.log"));
                virsh("start", "vimgfs-overlay").ok();
                awaitShutOff("vimgfs-overlay", System.nanoTime() + BOOT_LIMIT.toNanos());
                String console = read(vms.resolve("vimgfs-overlay.log"));
                Matcher rebooted = BOOT_OK.matcher(console);
                assertTrue(rebooted.find(), "the overlay's domain boots after its base lost its last tag\n" + console);
                assertEquals(marker, rebooted.group(1), "and reads the base's marker through its overlay");
                // the whole disk now holds the first boot's write too, so its digest is not the base's
                assertEquals(sectorsOf(read(vms.resolve("vimgfs-ro.log"))), rebooted.group(3), "the whole disk was read");
            } finally {
                removeLeftovers();
            }
        }
    }

    /**
     * Destroys and undefines this test's domains and pools: after each run, and before it those a
     * run killed before its clean-up left in libvirt (libvirt keeps definitions across runs),
     * on which pool-define-as and define would fail.
     */
    private static void removeLeftovers() {
        for (String domain : DOMAINS) {
            virsh("destroy", domain);
            virsh("undefine", domain);
        }
        for (String pool : POOLS) {
            virsh("pool-destroy", pool);
            virsh("pool-undefine", pool);
        }
    }

    /** Waits until the domain is shut off or the deadline passes; the asserts after say how one that did not finish ended. */
    private static void awaitShutOff(String domain, long deadlineNanos) {
        while (!"shut off".equals(state(domain)) && System.nanoTime() < deadlineNanos) {
            MountedStore.sleep(200);
        }
    }

    private static String sectorsOf(String console) {
        Matcher ok = BOOT_OK.matcher(console);
        assertTrue(ok.find(), console);
        return ok.group(3);
    }

    /** Missing libvirt skips the test, except in CI (VIMGFS_REQUIRE_FUSE=1), where it must run. */
    private static void requireLibvirt() {
        boolean installed = Shell.run("sh", "-c", "command -v virsh && command -v libvirtd").exit() == 0;
        if (!installed && "1".equals(System.getenv("VIMGFS_REQUIRE_FUSE"))) {
            throw new AssertionError("libvirt is not installed and VIMGFS_REQUIRE_FUSE=1: run scripts/setup test");
        }
        Assumptions.assumeTrue(installed, "libvirt is not installed (scripts/setup test installs it)");
    }

    /** The README's {@code <disk>} example that names {@code path}, with its indentation removed. */
    private static String readmeDisk(String path) throws java.io.IOException {
        String readme = Files.readString(Path.of("..", "README.md").toAbsolutePath().normalize());
        Matcher block = Pattern.compile("(?ms)^( *)```xml\n(.*?)^\\1```\n").matcher(readme);
        while (block.find()) {
            String xml = block.group(2).stripIndent();
            if (xml.contains("<disk") && xml.contains("'" + path + "'")) {
                return xml;
            }
        }
        throw new AssertionError("the README has no <disk> example on " + path);
    }

    private static void define(List<String> domains, String name, Path vms, String disk, String token) throws java.io.IOException {
        Path xml = vms.resolve(name + ".xml");
        Files.writeString(xml, domain(name, vms, vms.resolve(name + ".log"), disk, token));
        virsh("define", xml.toString()).ok();
        domains.add(name);
    }

    /** What the domain's QEMU has open, as {@code ls -l /proc/PID/fd} shows it. */
    private static String openFiles(String domain) throws java.io.IOException {
        String pid = Files.readString(Path.of("/run/libvirt/qemu", domain + ".pid")).strip();
        return Shell.run("ls", "-l", "/proc/" + pid + "/fd").out();
    }

    private static String state(String domain) {
        return virsh("domstate", domain).out().strip();
    }

    private static String stateWithReason(String domain) {
        return virsh("domstate", "--reason", domain).out().strip();
    }

    /** Without systemd, start virtlogd and libvirtd; /dev/kvm root:kvm 0660 for the run (HOST-NOTES). */
    private static void startLibvirt(List<Long> started, String kvmBefore) throws Exception {
        if (Shell.run("virsh", "-c", "qemu:///system", "version").exit() == 0) {
            return; // a libvirt of the host's own: use it, stop nothing
        }
        Shell.run("chgrp", "kvm", "/dev/kvm");
        Shell.run("chmod", "0660", "/dev/kvm");
        if (Shell.run("pgrep", "-x", "virtlogd").exit() != 0) { // one left running by libvirt's packages or a killed run
            Shell.run("virtlogd", "-d").ok();
            started.add(Long.parseLong(Files.readString(Path.of("/run/virtlogd.pid")).strip()));
        }
        Shell.run("libvirtd", "-d").ok();
        started.add(Long.parseLong(Files.readString(Path.of("/run/libvirtd.pid")).strip()));
        Eventually.within(Duration.ofSeconds(30), "libvirtd answers",
                () -> Shell.run("virsh", "-c", "qemu:///system", "version").exit() == 0);
    }

    private static String read(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file, java.nio.charset.StandardCharsets.ISO_8859_1) : "";
        } catch (java.io.IOException e) {
            return "";
        }
    }

    private static void pool(String name, String target) {
        virsh("pool-define-as", name, "dir", "--target", target).ok();
        virsh("pool-start", name).ok();
        virsh("pool-refresh", name).ok();
    }

    private static Shell.Result virsh(String... args) {
        List<String> command = new ArrayList<>(List.of("virsh", "-c", "qemu:///system"));
        command.addAll(List.of(args));
        return Shell.run(Duration.ofSeconds(120), Map.of(), command);
    }

    private static String domain(String name, Path vms, Path console, String disk, String token) {
        return """
                <domain type='qemu'>
                  <name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
                  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><initrd>%s</initrd>
                    <cmdline>console=ttyS0 panic=-1 quiet%s</cmdline></os>
                  <features><acpi/></features>
                  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
                  <devices>
                %s
                    <serial type='file'><source path='%s'/><target port='0'/></serial>
                  </devices>
                </domain>
                """.formatted(name, vms.resolve("vmlinuz"), vms.resolve("initrd.img"), token == null ? "" : " vimgfs.write=" + token,
                        disk.indent(4), console);
    }
}
