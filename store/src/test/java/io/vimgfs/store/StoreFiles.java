package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/** What a test sees of a store directory from outside: blob files, staging files, index.json. */
final class StoreFiles {
    static final int MIB = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private StoreFiles() {}

    static String sha256(Path file) throws IOException {
        MessageDigest digest = BlobFiles.newSha256();
        byte[] buffer = new byte[MIB];
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.read(buffer)) > 0) {
                digest.update(buffer, 0, n);
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    static String sha256(byte[] content) {
        return HexFormat.of().formatHex(BlobFiles.sha256(content));
    }

    /** Deterministic, incompressible-looking bytes that no format probe mistakes for an image. */
    static byte[] bytes(String seed, int size) {
        byte[] out = new byte[size];
        new Random(seed.hashCode()).nextBytes(out);
        byte[] label = ("raw:" + seed + "\n").getBytes(StandardCharsets.UTF_8);
        System.arraycopy(label, 0, out, 0, Math.min(label.length, size));
        return out;
    }

    static Path blob(Path root, String hex) {
        return root.resolve("blobs/sha256").resolve(hex);
    }

    static Set<String> blobNames(Path root) throws IOException {
        try (Stream<Path> files = Files.list(root.resolve("blobs/sha256"))) {
            return new TreeSet<>(files.map(p -> p.getFileName().toString()).toList());
        }
    }

    static List<Path> stagingFiles(Path root) throws IOException {
        try (Stream<Path> files = Files.list(root.resolve(".vimgfs/staging"))) {
            return files.toList();
        }
    }

    static List<Path> tempIndexFiles(Path root) throws IOException {
        try (Stream<Path> files = Files.list(root.resolve(".vimgfs"))) {
            return files.filter(p -> p.getFileName().toString().startsWith("index.json")).toList();
        }
    }

    /** Temporary files a replacement of index.json, holds.json or last-use.json left in .vimgfs/. */
    static List<Path> tempWorkFiles(Path root) throws IOException {
        try (Stream<Path> files = Files.list(root.resolve(".vimgfs"))) {
            return files.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList();
        }
    }

    /** Every name the store holds, as users type them. */
    static Set<String> names(ImageStore store) {
        return store.names().keySet().stream().map(ImageName::toString).collect(java.util.stream.Collectors.toSet());
    }

    /** {@code chattr -i}: what an operator (or a disk error) must do before a blob's bytes can change. */
    static void unprotect(Path file) throws IOException {
        run("chattr", "-i", file.toString());
    }

    /** Runs a command and returns its exit status and output. */
    static Run run(String... command) throws IOException {
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return new Run(process.waitFor(), output);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted running " + List.of(command), e);
        }
    }

    record Run(int status, String output) {
    }

    static JsonNode json(Path file) throws IOException {
        return JSON.readTree(file.toFile());
    }

    static JsonNode index(Path root) throws IOException {
        return json(root.resolve("index.json"));
    }

    /** The descriptor of index.json carrying the name, as skopeo would look it up. */
    static JsonNode descriptorOf(Path root, String name) throws IOException {
        for (JsonNode d : index(root).path("manifests")) {
            if (name.equals(d.path("annotations").path(OciLayout.REF_NAME).asText())) {
                return d;
            }
        }
        throw new AssertionError("index.json has no descriptor for " + name);
    }

    /** Hex digests of manifest, config and layer(s) of the named image, read from the files. */
    static List<String> blobsOfImage(Path root, String name) throws IOException {
        String manifest = hexOf(descriptorOf(root, name).path("digest").asText());
        JsonNode m = json(blob(root, manifest));
        List<String> all = new ArrayList<>(List.of(manifest, hexOf(m.path("config").path("digest").asText())));
        m.path("layers").forEach(l -> all.add(hexOf(l.path("digest").asText())));
        return all;
    }

    /** Every blob index.json reaches through its descriptors and the manifests and configs they name. */
    static Set<String> liveBlobs(Path root) throws IOException {
        Set<String> live = new TreeSet<>();
        for (JsonNode d : index(root).path("manifests")) {
            String manifest = hexOf(d.path("digest").asText());
            live.add(manifest);
            JsonNode m = json(blob(root, manifest));
            String config = hexOf(m.path("config").path("digest").asText());
            live.add(config);
            m.path("layers").forEach(l -> live.add(hexOf(l.path("digest").asText())));
            String backing = json(blob(root, config)).path("backing").asText("");
            if (!backing.isEmpty()) {
                live.add(hexOf(backing));
            }
        }
        return live;
    }

    static String hexOf(String digest) {
        assertTrue(digest.startsWith("sha256:"), digest);
        return digest.substring("sha256:".length());
    }

    /**
     * SPEC §7's promise after any crash: the store opens (and, as a mount does, seals blobs a crash
     * left before their immutable flag), every name resolves to an image whose blob exists and
     * hashes right, fsck is clean, and one gc leaves exactly the live blobs and no working files.
     * Returns the names and how many files gc removed.
     */
    static Outcome assertConsistent(Path root) throws IOException {
        try (ImageStore store = ImageStore.open(root)) {
            store.sealBlobs();
            Map<ImageName, Digest> names = store.names();
            for (Map.Entry<ImageName, Digest> entry : names.entrySet()) {
                ImageInfo info = store.resolve(entry.getKey().toString());
                assertEquals(entry.getValue(), info.digest());
                Path blob = blob(root, info.digest().hex());
                assertTrue(Files.exists(blob), entry.getKey() + " names a missing blob");
                assertEquals(info.digest().hex(), sha256(blob), entry.getKey() + "'s blob does not hash to its digest");
                assertEquals(info.size(), Files.size(blob));
            }
            FsckReport fsck = store.fsck(false, n -> { });
            assertTrue(fsck.clean(), () -> "fsck: " + fsck.problems());
            GcReport gc = store.collectGarbage(false);
            assertEquals(liveBlobs(root), blobNames(root), "after gc only live blobs remain");
            assertEquals(List.of(), stagingFiles(root), "after gc no staging file remains");
            assertEquals(List.of(), tempIndexFiles(root), "after gc no temporary index remains");
            assertEquals(List.of(), tempWorkFiles(root), "after gc no temporary holds or last-use file remains");
            assertEquals(List.of(), store.collectGarbage(true).removals(), "a second gc finds nothing");
            return new Outcome(Map.copyOf(names), gc.removals().size());
        }
    }

    /**
     * {@code skopeo inspect --raw oci:ROOT:NAME} prints the manifest index.json names for it, as
     * any reader of the OCI layout sees it. Skipped where skopeo is not installed.
     */
    static void assertSkopeoReads(Path root, String name) throws IOException {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/skopeo")), "skopeo is not installed");
        Process process = new ProcessBuilder("skopeo", "inspect", "--raw", "oci:" + root + ":" + name).start();
        byte[] manifest = process.getInputStream().readAllBytes();
        String errors = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            assertEquals(0, process.waitFor(), () -> "skopeo inspect " + name + ": " + errors);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
        assertEquals(hexOf(descriptorOf(root, name).path("digest").asText()), sha256(manifest),
                "skopeo reads the manifest index.json names for " + name);
    }

    record Outcome(Map<ImageName, Digest> names, int collected) {
        boolean has(String name) {
            try {
                return names.containsKey(ImageName.parse(name));
            } catch (InvalidNameException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
