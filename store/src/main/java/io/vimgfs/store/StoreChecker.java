package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.LongConsumer;

/**
 * fsck: re-hashes every blob, checks that each is immutable, and checks every reference of
 * index.json — manifests, configs, layers and backing digests — and of the journal's frames
 * not yet in it, reporting problems by digest. Callers hold the store lock.
 */
final class StoreChecker {
    private final BlobFiles files;

    StoreChecker(BlobFiles files) {
        this.files = files;
    }

    /**
     * The result of a check, with the descriptors that point at something missing or corrupt, and
     * the sound blobs without their immutable flag.
     */
    record Result(FsckReport report, List<JsonNode> healthy, List<JsonNode> broken, Set<Digest> corrupt,
            Set<Digest> unsealed) {
    }

    /** Total bytes {@link #check} will hash, for a progress bar. */
    long bytesToHash() throws IOException {
        long total = 0;
        try (DirectoryStream<Path> blobs = Files.newDirectoryStream(files.blobDir())) {
            for (Path blob : blobs) {
                total += Files.size(blob);
            }
        }
        return total;
    }

    Result check(byte[] indexJson, Journal.Contents journal, LongConsumer progress) throws IOException {
        List<FsckReport.Problem> problems = new ArrayList<>();
        Map<Digest, Path> present = new TreeMap<>();
        Set<Digest> corrupt = new HashSet<>();
        Set<Digest> unsealed = new TreeSet<>();
        long bytes = 0;
        try (DirectoryStream<Path> blobs = Files.newDirectoryStream(files.blobDir())) {
            for (Path blob : blobs) {
                String name = blob.getFileName().toString();
                if (!Digest.isHex64(name)) {
                    problems.add(new FsckReport.Problem("blobs/sha256/" + name, "stray file: not named by a sha256 digest"));
                    continue;
                }
                Digest expected = new Digest(name);
                present.put(expected, blob);
                long size = Files.size(blob);
                Digest actual;
                try (FileChannel channel = FileChannel.open(blob, StandardOpenOption.READ)) {
                    actual = ContentHasher.hash(channel, size, progress);
                }
                bytes += size;
                if (!actual.equals(expected)) {
                    corrupt.add(expected);
                    problems.add(new FsckReport.Problem(expected.toString(), "corrupt: its content hashes to " + actual));
                } else if (files.immutability(blob) == ImmutableFlag.State.CLEAR) {
                    unsealed.add(expected);
                    problems.add(new FsckReport.Problem(expected.toString(),
                            "not immutable: root could change its bytes (fsck --repair sets the flag)"));
                }
            }
        }

        OciLayout.Index index = OciLayout.parseIndex(indexJson);
        List<JsonNode> healthy = new ArrayList<>();
        List<JsonNode> broken = new ArrayList<>();
        for (JsonNode descriptor : OciLayout.descriptors(index)) {
            List<FsckReport.Problem> found = checkDescriptor(descriptor, present.keySet(), corrupt);
            problems.addAll(found);
            (found.isEmpty() ? healthy : broken).add(descriptor);
        }
        problems.addAll(checkJournal(journal, index.generation(), present.keySet(), corrupt));
        FsckReport report = new FsckReport(present.size(), bytes, dedupe(problems), List.of());
        return new Result(report, healthy, broken, corrupt, unsealed);
    }

    private List<FsckReport.Problem> checkDescriptor(JsonNode descriptor, Set<Digest> present, Set<Digest> corrupt) {
        String label = descriptor.path("annotations").path(OciLayout.REF_NAME).asText("(unnamed)");
        List<FsckReport.Problem> problems = new ArrayList<>();
        Digest manifest;
        try {
            manifest = OciLayout.digestOf(descriptor);
        } catch (StoreDamagedException e) {
            return List.of(new FsckReport.Problem(label, e.getMessage()));
        }
        if (!usable(manifest, present, corrupt, "manifest of " + label, problems)) {
            return problems;
        }
        try {
            byte[] manifestBytes = files.read(manifest);
            OciLayout.ManifestRefs refs = OciLayout.references(manifest, manifestBytes);
            List<Digest> needed = new ArrayList<>(refs.layers());
            refs.config().ifPresent(needed::add);
            needed.addAll(refs.manifests());
            for (Digest blob : needed) {
                usable(blob, present, corrupt, "blob of " + label + " (manifest " + manifest.shortHex() + ")", problems);
            }
            if (problems.isEmpty() && OciLayout.ARTIFACT_TYPE.equals(descriptor.path("artifactType").asText())) {
                StoredImage image = OciLayout.parseImage(manifest, manifestBytes, files.read(refs.config().orElseThrow()));
                Optional<Digest> backing = image.backing();
                if (backing.isPresent()) {
                    usable(backing.get(), present, corrupt, "backing image of " + label, problems);
                }
            }
        } catch (IOException e) {
            problems.add(new FsckReport.Problem(manifest.toString(), label + ": " + e.getMessage()));
        }
        return problems;
    }

    /**
     * The journal's frames beyond the index must name only blobs that are there and sound (they
     * were durable before the frame was written), and it must end cleanly: opening cuts a torn
     * tail off, so one seen here came from a crash since, or a store on a read-only filesystem.
     */
    private static List<FsckReport.Problem> checkJournal(Journal.Contents journal, long indexGeneration, Set<Digest> present,
            Set<Digest> corrupt) {
        List<FsckReport.Problem> problems = new ArrayList<>();
        journal.damage().ifPresent(d -> problems.add(new FsckReport.Problem(".vimgfs/" + Journal.FILE,
                "torn or corrupt tail: " + d + " (the commit it held was never acknowledged)")));
        for (Journal.Frame frame : journal.frames()) {
            if (frame.sequence() <= indexGeneration) {
                continue;
            }
            for (Change change : frame.changes()) {
                if (change instanceof Change.AddImage add) {
                    StoredImage image = add.image();
                    String role = "blob of image " + image.layer().shortHex() + " in journal commit " + frame.sequence();
                    for (Digest blob : image.blobs()) {
                        usable(blob, present, corrupt, role, problems);
                    }
                }
            }
        }
        return problems;
    }

    private static boolean usable(Digest digest, Set<Digest> present, Set<Digest> corrupt, String role,
            List<FsckReport.Problem> problems) {
        if (!present.contains(digest)) {
            problems.add(new FsckReport.Problem(digest.toString(), role + " is missing"));
            return false;
        }
        if (corrupt.contains(digest)) {
            problems.add(new FsckReport.Problem(digest.toString(), role + " is corrupt"));
            return false;
        }
        return true;
    }

    private static List<FsckReport.Problem> dedupe(List<FsckReport.Problem> problems) {
        return List.copyOf(new LinkedHashSet<>(problems));
    }
}
