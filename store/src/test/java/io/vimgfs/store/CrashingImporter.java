package io.vimgfs.store;

import io.vimgfs.store.registry.CredentialLookup;
import io.vimgfs.store.registry.Puller;
import io.vimgfs.store.registry.RegistryClient;
import io.vimgfs.store.registry.RegistryReference;
import io.vimgfs.store.registry.TransferProgress;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The other process of the crash and two-process tests: opens a store and does one kind of work,
 * optionally halting (like a power cut, no shutdown hooks, no finally blocks) at a {@link CrashPoint}.
 *
 * <pre>
 * crash STORE POINT import FILE NAME | crash STORE POINT untag NAME | crash STORE POINT gc
 * crash STORE POINT hold REF WHY | crash STORE POINT release REF | crash STORE POINT uses | crash STORE POINT seal
 * crash STORE POINT@N pull SOURCE NAME RANGE_BYTES IN_FLIGHT   pull over https (any certificate) in ranges;
 *                        POINT@N halts at the Nth time the process passes POINT
 * crash STORE POINT keep REPO REF   keep a container image (not a disk) as vimgfs serve does
 * crash STORE POINT place SOURCE NAME   place SOURCE's image NAME with a chunk index, as a pull of a pushed image does
 * crash STORE POINT lazy NAME           record a lazy pull of a made-up disk under NAME
 * pause STORE POINT …    as crash, but at POINT print "paused at POINT" and wait for a line on stdin, then go on
 * holds STORE K          hold base:0 … base:K-1 in turn, then release them in turn, forever, printing "held NAME" / "released NAME"
 * uses STORE             record a use of every image and write last-use.json, forever, printing "persisted I"
 * rm STORE NAME          untag NAME, then gc, as {@code vimgfs rm} and {@code vimgfs gc} do
 * seal STORE             seal the store's blobs as a mount does, then print "sealed N in MILLIS"
 * once STORE FILE        import FILE as big:latest and untag it, then print "done MILLIS"
 * loop STORE FILE        the same, forever, printing each step
 * many STORE PREFIX N    import N generated images as PREFIX/img:I
 * tags STORE PREFIX      give base:1 the names PREFIX:0, PREFIX:1, … forever, printing "tagged NAME" after each
 * import STORE FILE NAME
 * gc STORE
 * </pre>
 * Every mode prints "ready" once the store is open.
 */
public final class CrashingImporter {
    public static final int HALT_STATUS = 137;

    private CrashingImporter() {}

    public static void main(String[] args) throws Exception {
        Path store = Path.of(args[1]);
        switch (args[0]) {
            case "crash", "pause" -> crash(store, args[2], args[0].equals("pause"), args);
            case "holds" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    int k = Integer.parseInt(args[2]);
                    for (long i = 0; ; i++) {
                        String name = "base:" + (i % k);
                        if ((i / k) % 2 == 0) {
                            s.hold(name, "round " + i / k);
                            System.out.println("held " + name);
                        } else {
                            s.release(name);
                            System.out.println("released " + name);
                        }
                        System.out.flush();
                    }
                }
            }
            case "uses" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    for (long i = 0; ; i++) {
                        s.list().forEach(image -> s.recordUse(image.digest()));
                        s.persistUses(true);
                        System.out.println("persisted " + i);
                        System.out.flush();
                    }
                }
            }
            case "rm" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    s.untag(ImageName.parse(args[2]));
                    s.collectGarbage(false);
                    System.out.println("removed " + args[2]);
                }
            }
            case "seal" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    long start = System.nanoTime();
                    int sealed = s.sealBlobs();
                    System.out.println("sealed " + sealed + " in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
                }
            }
            case "once", "loop" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    do {
                        long start = System.nanoTime();
                        s.importFile(Path.of(args[2]), Reference.parse("big:latest"), n -> { });
                        System.out.println("imported");
                        s.untag(ImageName.parse("big:latest"));
                        System.out.println("done " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
                    } while (args[0].equals("loop"));
                }
            }
            case "many" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    for (int i = 0; i < Integer.parseInt(args[3]); i++) {
                        s.importStream(new ByteArrayInputStream(content(args[2], i)),
                                Reference.parse(args[2] + "/img:" + i), n -> { });
                    }
                }
            }
            case "tags" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    for (int i = 0; ; i++) {
                        ImageName name = ImageName.parse(args[2] + ":" + i);
                        s.tag("base:1", name);
                        System.out.println("tagged " + name);
                        System.out.flush();
                    }
                }
            }
            case "import" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    System.out.println(s.importFile(Path.of(args[2]), Reference.parse(args[3]), n -> { }).digest());
                }
            }
            case "gc" -> {
                try (ImageStore s = ImageStore.open(store)) {
                    ready();
                    for (GcReport.Removal removal : s.collectGarbage(false).removals()) {
                        System.out.println("removed " + removal.file() + ": " + removal.reason());
                    }
                }
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
        System.out.flush();
    }

    private static void crash(Path store, String where, boolean pause, String[] args) throws IOException {
        CrashPoint target = CrashPoint.valueOf(where.split("@")[0]);
        AtomicInteger passesLeft = new AtomicInteger(where.contains("@") ? Integer.parseInt(where.split("@")[1]) : 1);
        StoreOptions options = StoreOptions.defaults().withCrashHook(point -> {
            if (point != target || passesLeft.decrementAndGet() > 0) {
                return;
            }
            if (pause) {
                System.out.println("paused at " + point);
                System.out.flush();
                awaitLine();
            } else {
                System.out.println("halting at " + point);
                System.out.flush();
                Runtime.getRuntime().halt(HALT_STATUS);
            }
        });
        try (ImageStore s = ImageStore.open(store, options)) {
            ready();
            switch (args[3]) {
                case "import" -> s.importFile(Path.of(args[4]), Reference.parse(args[5]), n -> { });
                case "untag" -> s.untag(ImageName.parse(args[4]));
                case "gc" -> s.collectGarbage(false);
                case "hold" -> s.hold(args[4], args[5]);
                case "release" -> s.release(args[4]);
                case "uses" -> {
                    s.list().forEach(image -> s.recordUse(image.digest()));
                    s.persistUses(true);
                }
                case "seal" -> s.sealBlobs();
                case "pull" -> new Puller(s, new RegistryClient.Options(false, 5, Duration.ofMillis(10), Duration.ofSeconds(30)),
                        new CredentialLookup(Optional.empty(), Optional.empty(), Map.of(), store), TransferProgress.NONE,
                        new Puller.Ranges(Long.parseLong(args[6]), Long.parseLong(args[6]), Integer.parseInt(args[7])))
                        .pull(RegistryReference.parse(args[4]), Reference.parse(args[5]), new Puller.Choice("amd64", "qemu"));
                case "keep" -> ForeignContentTest.ContainerImage.of("crash", null).keep(s, args[4], args[5]);
                case "place" -> placeWithChunkIndex(s, Path.of(args[4]), args[5]);
                case "lazy" -> new LazyPulls(store.resolve(".vimgfs"), options.crashHook()).add(LazyPullsTest.pull(args[4]));
                default -> throw new IllegalArgumentException(args[3]);
            }
        }
        System.out.println(pause ? "done" : "finished without reaching " + target);
    }

    /** Places SOURCE's image NAME byte for byte with a chunk index, as a pull of a pushed image does. */
    private static void placeWithChunkIndex(ImageStore target, Path sourceStore, String name) throws IOException {
        try (ImageStore source = ImageStore.open(sourceStore)) {
            ImageStore.Artifact artifact = source.artifact(source.resolve(name).digest());
            ChunkIndex index;
            try (java.nio.channels.FileChannel layer = source.openImage(artifact.layer())) {
                index = ChunkIndex.compute(layer, artifact.layerSize(), n -> { });
            }
            Upload upload = target.beginUpload();
            try (java.io.InputStream in = java.nio.channels.Channels.newInputStream(source.openImage(artifact.layer()))) {
                upload.copyFrom(in, n -> { });
            }
            target.placeArtifact(upload, index.addTo(artifact.manifest()), artifact.config(), Optional.of(index.bytes()),
                    Reference.parse(name));
        }
    }

    private static void awaitLine() {
        try {
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void ready() {
        System.out.println("ready");
        System.out.flush();
    }

    /** The bytes of generated image {@code i}: the same in every process. */
    static byte[] content(String prefix, int i) {
        return StoreFiles.bytes(prefix + "-" + i, 64 * 1024 + i);
    }

    /** A command line that runs this class in a new JVM with the test class path. */
    static ProcessBuilder command(boolean quickStart, String... args) {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xshare:auto");
        command.add("-XX:+UseSerialGC");
        if (quickStart) {
            command.add("-XX:TieredStopAtLevel=1");
        }
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(CrashingImporter.class.getName());
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true);
    }

    /** Runs a child to its end and returns its exit status and output. */
    public static Result run(String... args) throws IOException, InterruptedException {
        Process process = command(true, args).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("child did not finish: " + List.of(args) + "\n" + output);
        }
        return new Result(process.exitValue(), output);
    }

    public record Result(int status, String output) {
    }
}
