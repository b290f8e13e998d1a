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
 * cleanly, and a domain on a stored image, with the README's {@code <disk>} XML, boots and reads
 * its disk (the boot kit's marker on its serial console). It installs nothing (scripts/setup test
 * does); it starts virtlogd and libvirtd itself when systemd is not running and stops them after,
 * and gives {@code /dev/kvm} back as it was. Not yet here: an overlay domain, a daemon restart
 * under running domains, and tag removal under a stopped overlay (that needs holds).
 */
class LibvirtTest {
    private static final Pattern BOOT_OK = Pattern.compile("VIMGFS-BOOT-OK marker=(\\S+) sha256=([0-9a-f]{64}) sectors=(\\d+) ro=([01])");

    @Test
    void poolsListTheMountAndADomainBootsFromAStoredImage() throws Exception {
        MountedStore.requireFuse();
        Assumptions.assumeTrue(Shell.run("sh", "-c", "command -v virsh && command -v libvirtd").exit() == 0,
                "libvirt is not installed (scripts/setup test installs it)");
        Path kit = Path.of(System.getenv().getOrDefault("VIMGFS_BOOT_KIT", "/var/cache/vimgfs-boot-kit"));
        Shell.run(Duration.ofMinutes(15), Map.of(), List.of(Path.of("..", "scripts", "make-boot-kit").toAbsolutePath().normalize().toString(),
                kit.toString())).ok();
        // libvirt-qemu must traverse every parent of the store and of the mountpoint: not a 0700 @TempDir
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "vimgfs-libvirt-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path vms = Files.createDirectories(dir.resolve("vms"));
        for (String file : List.of("vmlinuz", "initrd.img")) {
            Files.copy(kit.resolve(file), vms.resolve(file));
        }
        String kvmBefore = Shell.run("stat", "-c", "%U:%G %a", "/dev/kvm").out().strip();
        List<Long> started = new ArrayList<>();
        try (MountedStore m = MountedStore.mount(dir, "allow_other")) {
            startLibvirt(started, kvmBefore);
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

                Path console = vms.resolve("ro.log");
                Path xml = dir.resolve("ro.xml");
                Files.writeString(xml, domain("vimgfs-ro", vms, console, """
                            <disk type='file' device='disk'>
                              <driver name='qemu' type='qcow2'/>
                              <source file='%s'/>
                              <readonly/>
                              <target dev='vda' bus='virtio'/>
                            </disk>
                        """.formatted(m.at("by-digest/sha256/" + hex))));
                virsh("create", xml.toString()).ok();
                Eventually.within(Duration.ofSeconds(120), "the guest prints its marker",
                        () -> read(console).contains("VIMGFS-BOOT-OK"));
                Matcher ok = BOOT_OK.matcher(read(console));
                assertTrue(ok.find());
                assertEquals(Files.readString(kit.resolve("marker")).strip(), ok.group(1), "the guest read its disk");
                assertEquals("1", ok.group(4), "<readonly/> reaches the guest");
            } finally {
                virsh("destroy", "vimgfs-ro");
                for (String pool : List.of("vimgfs-digest", "vimgfs-tags", "vimgfs-names", "vimgfs-incoming")) {
                    virsh("pool-destroy", pool);
                    virsh("pool-undefine", pool);
                }
            }
        } finally {
            for (long pid : started) {
                Shell.run("kill", Long.toString(pid));
            }
            if (!kvmBefore.equals(Shell.run("stat", "-c", "%U:%G %a", "/dev/kvm").out().strip())) {
                String[] owner = kvmBefore.split("[: ]");
                Shell.run("chown", owner[0] + ":" + owner[1], "/dev/kvm");
                Shell.run("chmod", owner[2], "/dev/kvm");
            }
            Shell.run("rm", "-rf", dir.toString());
        }
    }

    /** Without systemd, start virtlogd and libvirtd; /dev/kvm root:kvm 0660 for the run (HOST-NOTES). */
    private static void startLibvirt(List<Long> started, String kvmBefore) throws Exception {
        if (Shell.run("virsh", "-c", "qemu:///system", "version").exit() == 0) {
            return; // a libvirt of the host's own: use it, stop nothing
        }
        Shell.run("chgrp", "kvm", "/dev/kvm");
        Shell.run("chmod", "0660", "/dev/kvm");
        Shell.run("virtlogd", "-d").ok();
        started.add(Long.parseLong(Files.readString(Path.of("/run/virtlogd.pid")).strip()));
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

    private static String domain(String name, Path vms, Path console, String disk) {
        return """
                <domain type='qemu'>
                  <name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
                  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><initrd>%s</initrd>
                    <cmdline>console=ttyS0 panic=-1 quiet</cmdline></os>
                  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
                  <devices>
                %s
                    <serial type='file'><source path='%s'/><target port='0'/></serial>
                  </devices>
                </domain>
                """.formatted(name, vms.resolve("vmlinuz"), vms.resolve("initrd.img"), disk, console);
    }
}
