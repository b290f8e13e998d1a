package io.vimgfs.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The lazy pulls a store has been asked for and not yet finished ({@code vimgfs pull --lazy}):
 * one file per disk, {@code .vimgfs/lazy-sha256-<hex>.json}, holding what the pull verified before
 * it returned (the source, the name, the manifest, config and chunk index) so that whichever
 * process serves the disk (the mount) can fetch it, and a restarted one can go on. Each file is
 * replaced whole through {@link ReplacedFile} ({@code LAZY_*} crash points), so an acknowledged
 * pull survives any crash after it; the record goes once its disk is placed.
 */
public final class LazyPulls {
    private static final System.Logger LOG = System.getLogger(LazyPulls.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String PREFIX = "lazy-";
    private static final String SUFFIX = ".json";
    static final ReplacedFile.Steps STEPS = new ReplacedFile.Steps(CrashPoint.LAZY_TORN, CrashPoint.LAZY_WRITTEN,
            CrashPoint.LAZY_STAGED, CrashPoint.LAZY_RENAMED, CrashPoint.LAZY_SYNCED);

    /**
     * One lazy pull: where the disk comes from (and whether its TLS certificate is checked), the
     * name it gets, and its verified metadata.
     */
    public record Pull(String source, boolean tlsVerify, ImageName name, Digest layer, long size, byte[] manifest,
            byte[] config, byte[] chunks) {
    }

    private final Path workDir;
    private final Consumer<CrashPoint> crashHook;

    LazyPulls(Path workDir, Consumer<CrashPoint> crashHook) {
        this.workDir = workDir;
        this.crashHook = crashHook;
    }

    /** Records the pull; once this returns it is durable. A pull of the same disk is replaced. */
    public void add(Pull pull) throws IOException {
        ObjectNode json = JSON.createObjectNode();
        json.put("source", pull.source());
        json.put("tlsVerify", pull.tlsVerify());
        json.put("name", pull.name().toString());
        json.put("layer", pull.layer().toString());
        json.put("size", pull.size());
        Base64.Encoder base64 = Base64.getEncoder();
        json.put("manifest", base64.encodeToString(pull.manifest()));
        json.put("config", base64.encodeToString(pull.config()));
        json.put("chunks", base64.encodeToString(pull.chunks()));
        Files.createDirectories(workDir);
        new ReplacedFile(file(pull.layer()), STEPS, crashHook).replace(JSON.writeValueAsBytes(json));
    }

    /** Every recorded pull; a file that cannot be read is skipped and logged, not deleted. */
    public List<Pull> list() throws IOException {
        List<Pull> pulls = new ArrayList<>();
        if (!Files.isDirectory(workDir)) {
            return pulls;
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(workDir, PREFIX + "sha256-*" + SUFFIX)) {
            for (Path file : files) {
                try {
                    pulls.add(read(file));
                } catch (NoSuchFileException e) {
                    // finished meanwhile
                } catch (IOException e) {
                    LOG.log(System.Logger.Level.WARNING, "lazy pull " + file + " is unreadable: " + e.getMessage());
                }
            }
        }
        return pulls;
    }

    /** The disks with a recorded pull, from the file names alone (a scan that reads no record). */
    public List<Digest> layers() throws IOException {
        List<Digest> layers = new ArrayList<>();
        if (!Files.isDirectory(workDir)) {
            return layers;
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(workDir, PREFIX + "sha256-*" + SUFFIX)) {
            for (Path file : files) {
                String name = file.getFileName().toString();
                String hex = name.substring((PREFIX + "sha256-").length(), name.length() - SUFFIX.length());
                if (Digest.isHex64(hex)) {
                    layers.add(new Digest(hex));
                }
            }
        }
        return layers;
    }

    public Optional<Pull> find(Digest layer) throws IOException {
        try {
            return Optional.of(read(file(layer)));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
    }

    public Optional<Pull> find(ImageName name) throws IOException {
        return list().stream().filter(p -> p.name().equals(name)).findFirst();
    }

    /** Forgets the pull of {@code layer}: its disk was placed, or it was given up. */
    public void remove(Digest layer) throws IOException {
        if (Files.deleteIfExists(file(layer))) {
            BlobFiles.syncDirectory(workDir);
        }
    }

    private Path file(Digest layer) {
        return workDir.resolve(PREFIX + "sha256-" + layer.hex() + SUFFIX);
    }

    private static Pull read(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        try {
            JsonNode json = JSON.readTree(bytes);
            Base64.Decoder base64 = Base64.getDecoder();
            return new Pull(json.path("source").asText(), json.path("tlsVerify").asBoolean(true),
                    ImageName.parse(json.path("name").asText()),
                    Digest.parse(json.path("layer").asText()), json.path("size").asLong(),
                    base64.decode(json.path("manifest").asText()), base64.decode(json.path("config").asText()),
                    base64.decode(json.path("chunks").asText()));
        } catch (InvalidNameException | IllegalArgumentException | com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new StoreDamagedException(file + " is not a lazy pull record: " + e.getMessage(), e);
        }
    }
}
