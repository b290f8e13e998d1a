package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The images hypervisors meet (issue 4): each is made by qemu-img, copied into incoming/, and
 * must come out probed as qemu-img sees it (format, virtual size) and readable byte for byte.
 */
class HypervisorImagesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** How to make one kind of image from the raw source. */
    record Kind(String name, String format, List<String> convert) {
    }

    @Test
    void everyFormatIsPlacedProbedAndReadable() throws IOException {
        Path raw = dir.resolve("source.raw");
        Shell.run("qemu-img", "create", "-q", "-f", "raw", raw.toString(), "96M").ok();
        Shell.run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 4M", "-c", "write -P 0x22 50M 3M",
                "-c", "write -P 0x33 95M 1M", raw.toString()).ok();
        List<Kind> kinds = List.of(
                new Kind("raw", "raw", List.of("-O", "raw")),
                new Kind("qcow2-v2", "qcow2", List.of("-O", "qcow2", "-o", "compat=0.10")),
                new Kind("qcow2-v3", "qcow2", List.of("-O", "qcow2", "-o", "compat=1.1")),
                new Kind("qcow2-compressed", "qcow2", List.of("-O", "qcow2", "-c")),
                new Kind("qcow2-extended-l2", "qcow2", List.of("-O", "qcow2", "-o", "extended_l2=on,cluster_size=128k")),
                new Kind("vmdk", "vmdk", List.of("-O", "vmdk")),
                new Kind("vhdx", "vhdx", List.of("-O", "vhdx")),
                new Kind("vdi", "vdi", List.of("-O", "vdi")));
        try (MountedStore mount = MountedStore.mount(dir)) {
            Shell.run("mkdir", mount.path("incoming/formats").toString()).ok();
            for (Kind kind : kinds) {
                Path image = dir.resolve(kind.name() + ".img");
                List<String> convert = new ArrayList<>(List.of("qemu-img", "convert", "-f", "raw"));
                convert.addAll(kind.convert());
                convert.addAll(List.of(raw.toString(), image.toString()));
                Shell.run(Duration.ofSeconds(120), Map.of(), convert).ok();
                placeAndCheck(mount, image, "formats/" + kind.name() + ":1", kind.format(), true);
                Shell.run("qemu-img", "compare", "-f", "raw", raw.toString(),
                        mount.path("tags/formats/" + kind.name() + "/1").toString()).ok();
            }
        }
    }

    @Test
    void aSparseImageOverFourGibibytesKeepsItsVirtualSize() throws IOException {
        Path big = dir.resolve("big.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", big.toString(), "6G").ok();
        Shell.run("qemu-io", "-c", "write -P 0x5e 5G 1M", big.toString()).ok();
        Path sparseRaw = dir.resolve("big.raw");
        Shell.run("truncate", "-s", "4160M", sparseRaw.toString()).ok();
        Shell.run("qemu-io", "-f", "raw", "-c", "write -P 0x7f 4100M 64k", sparseRaw.toString()).ok();
        try (MountedStore mount = MountedStore.mount(dir)) {
            placeAndCheck(mount, big, "big:qcow2", "qcow2", true);
            Shell.run("qemu-io", "-r", "-c", "read -P 0x5e 5G 1M", mount.path("tags/big/qcow2").toString()).ok();
            // 4 GiB read through FUSE takes seconds; qemu-io reads at both ends stand in for cmp
            placeAndCheck(mount, sparseRaw, "big:raw", "raw", false);
            Shell.run("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x7f 4100M 64k", "-c", "read -P 0 4G 1M",
                    mount.path("tags/big/raw").toString()).ok();
        }
    }

    private static void placeAndCheck(MountedStore mount, Path image, String name, String format, boolean readBack)
            throws IOException {
        Shell.run(Duration.ofSeconds(300), Map.of(), List.of("cp", "--sparse=always", image.toString(),
                mount.path("incoming/" + name).toString())).ok();
        String hex = Shell.sha256InProcess(image);
        String file = mount.path("by-digest/sha256/" + hex).toString();
        JsonNode info = JSON.readTree(Shell.run("qemu-img", "info", "--output=json", image.toString()).ok().out());
        assertEquals(format, xattr(file, "format"), name);
        assertEquals(info.path("virtual-size").asText(), xattr(file, "virtual_size"), name);
        assertEquals(format, info.path("format").asText(), name);
        JsonNode throughMount = JSON.readTree(Shell.run("qemu-img", "info", "--output=json", file).ok().out());
        assertEquals(info.path("virtual-size").asLong(), throughMount.path("virtual-size").asLong(), name);
        if (readBack) {
            assertEquals(hex, Shell.sha256InProcess(Path.of(file)), name + " reads back different bytes");
        }
    }

    private static String xattr(String file, String key) {
        return Shell.run("getfattr", "--only-values", "-n", "user.vimgfs." + key, file).ok().out().strip();
    }
}
