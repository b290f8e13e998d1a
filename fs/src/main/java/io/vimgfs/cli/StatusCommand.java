package io.vimgfs.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vimgfs.fs.Activity;
import io.vimgfs.fs.ControlSocket;
import io.vimgfs.fs.Mounts;
import io.vimgfs.store.GcReport;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import io.vimgfs.store.ImageUse;
import io.vimgfs.store.MountRecords.MountRecord;
import io.vimgfs.store.StoreDirectory;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code vimgfs status [--json] [MOUNTPOINT]}: what the host is doing, in one screen. The store
 * part (images, nameless images and why they stay, what gc would free, free space, staging
 * files) is read from the store; each live mount is asked over its {@link ControlSocket} with a
 * timeout, so a hung or stopped daemon is reported, never waited for; who has images open comes
 * from {@code /proc}. Nothing here touches the mountpoint itself. Exit 1 when a live mount's
 * daemon does not answer.
 */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = {"What the store and its mounts are doing: mounts, images, images in use and by whom,",
            "uploads in flight, what gc would free, free space, the mount's numbers and last errors."})
final class StatusCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Duration RATE_SAMPLE = Duration.ofMillis(500);

    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Parameters(arity = "0..1", paramLabel = "MOUNTPOINT", description = "A vimgfs mount; its store is the one shown.")
    Path mountpoint;

    @Option(names = "--json", description = "Print JSON (the same facts, and every metric of each mount).")
    boolean json;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "3",
            description = "How long to wait for a daemon (and for the store's lock) before saying it does not answer.")
    double timeoutSeconds;

    @Override
    public Integer call() throws Exception {
        Path store = storeRoot();
        StoreDirectory directory = StoreDirectory.of(store);
        if (!directory.holdsStore()) {
            throw new IOException("no vimgfs store at " + store);
        }
        Duration timeout = Duration.ofMillis((long) (timeoutSeconds * 1000));
        ObjectNode status = JSON.createObjectNode();
        status.put("store", store.toString());
        List<MountRecord> records = directory.mounts().live();
        ArrayNode mounts = status.putArray("mounts");
        boolean allAnswered = true;
        for (MountRecord record : records) {
            allAnswered &= describeMount(store, record, timeout, mounts.addObject());
        }
        status.set("images", storeFacts(directory, timeout));
        Set<Long> daemons = new HashSet<>();
        records.forEach(r -> daemons.add(r.pid()));
        ArrayNode inUse = status.putArray("inUse");
        for (ImageUse user : ImagesInUse.scan(directory, records.stream().map(MountRecord::mountpoint).toList(), daemons)) {
            inUse.addObject().put("digest", user.digest().toString()).put("pid", user.pid())
                    .put("command", user.command()).put("path", user.path());
        }
        status.set("activity", activity(store));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(JSON.writeValueAsString(status));
        } else {
            StatusText.print(status, out);
        }
        out.flush();
        return allAnswered ? 0 : 1;
    }

    private Path storeRoot() throws IOException {
        if (mountpoint == null) {
            return main.storePath().toAbsolutePath().normalize();
        }
        // mountinfo only: a stat of a hung mount would block this command
        String source = Mounts.isVimgfsAt(mountpoint) ? Mounts.sourceAt(mountpoint) : null;
        if (source == null) {
            throw new IOException(mountpoint + " is not a vimgfs mount (give --store DIR for a store that is not mounted)");
        }
        return Path.of(source).toAbsolutePath().normalize();
    }

    /** Asks one daemon; returns whether it answered. */
    private static boolean describeMount(Path store, MountRecord record, Duration timeout, ObjectNode mount) throws IOException {
        mount.put("mountpoint", record.mountpoint().toString()).put("pid", record.pid());
        mount.put("mounted", Mounts.isVimgfsAt(record.mountpoint()));
        Path socket = ControlSocket.pathFor(store, record.pid());
        ControlSocket.Answer answer = ControlSocket.ask(socket, timeout);
        if (answer instanceof ControlSocket.Answer.Report report) {
            mount.put("daemon", "answers").put("answeredMillis", report.took().toMillis());
            JsonNode first = JSON.readTree(report.json());
            mount.set("report", first);
            addRates(socket, timeout, first, mount);
            return true;
        }
        if (answer instanceof ControlSocket.Answer.Silent silent) {
            mount.put("daemon", "does not answer").put("waitedMillis", silent.waited().toMillis())
                    .put("processState", processState(record.pid()));
            return false;
        }
        mount.put("daemon", "no status socket").put("why", ((ControlSocket.Answer.Absent) answer).why());
        return true;
    }

    /** Uploads' rates: a second report a moment later, and the difference in bytes. */
    private static void addRates(Path socket, Duration timeout, JsonNode first, ObjectNode mount) throws IOException {
        if (first.path("uploads").isEmpty()) {
            return;
        }
        try {
            Thread.sleep(RATE_SAMPLE.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        if (!(ControlSocket.ask(socket, timeout) instanceof ControlSocket.Answer.Report second)) {
            return;
        }
        Map<String, Long> before = new TreeMap<>();
        first.path("uploads").forEach(u -> before.put(u.path("path").asText(), u.path("bytes").asLong()));
        ArrayNode uploads = mount.putArray("uploads");
        for (JsonNode upload : JSON.readTree(second.json()).path("uploads")) {
            String path = upload.path("path").asText();
            long bytes = upload.path("bytes").asLong();
            ObjectNode row = uploads.addObject().put("path", path).put("bytes", bytes);
            if (before.containsKey(path)) {
                row.put("bytesPerSecond", Math.max(0, (bytes - before.get(path)) * 1000 / RATE_SAMPLE.toMillis()));
            }
        }
    }

    /** The kernel's word for the process: R, S, D (waiting on I/O), T (stopped), Z. */
    private static String processState(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String state = stat.substring(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
            return switch (state) {
                case "T", "t" -> "stopped (SIGSTOP or a debugger: kill -CONT " + pid + ")";
                case "D" -> "waiting on I/O";
                case "Z" -> "exited (zombie)";
                default -> "running or sleeping (" + state + "), but not answering";
            };
        } catch (IOException | RuntimeException e) {
            return "gone";
        }
    }

    /** The store's side, read under a timeout: opening takes the store's lock, which a stopped writer may hold. */
    private static JsonNode storeFacts(StoreDirectory store, Duration timeout) {
        CompletableFuture<ObjectNode> facts = CompletableFuture.supplyAsync(() -> {
            try (ImageStore opened = ImageStore.open(store.root())) {
                return storeFacts(opened);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, command -> {
            Thread thread = new Thread(command, "vimgfs-status-store");
            thread.setDaemon(true);
            thread.start();
        });
        ObjectNode node;
        try {
            node = facts.get(timeout.toMillis() + 2000, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            node = JSON.createObjectNode().put("error", "the store's lock is held by a writer that does not finish"
                    + " (a stopped daemon in the middle of a placement?)");
        } catch (ExecutionException e) {
            node = JSON.createObjectNode().put("error", String.valueOf(e.getCause().getMessage()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            node = JSON.createObjectNode().put("error", "interrupted");
        }
        node.set("staging", staging(store));
        return node;
    }

    private static ObjectNode storeFacts(ImageStore store) throws IOException {
        ObjectNode node = JSON.createObjectNode();
        List<ImageInfo> images = store.list();
        node.put("count", images.size()).put("bytes", images.stream().mapToLong(ImageInfo::size).sum())
                .put("names", store.names().size());
        ObjectNode formats = node.putObject("byFormat");
        for (ImageInfo image : images) {
            ObjectNode format = formats.has(image.format().id()) ? (ObjectNode) formats.get(image.format().id())
                    : formats.putObject(image.format().id()).put("count", 0).put("bytes", 0L);
            format.put("count", format.get("count").asInt() + 1).put("bytes", format.get("bytes").asLong() + image.size());
        }
        ArrayNode nameless = node.putArray("nameless");
        java.util.Map<io.vimgfs.store.Digest, List<io.vimgfs.store.KeepReason>> reasons = store.keepReasons();
        for (ImageInfo image : images) {
            if (image.names().isEmpty()) {
                List<String> why = reasons.getOrDefault(image.digest(), List.of()).stream()
                        .map(io.vimgfs.store.KeepReason::describe).toList();
                nameless.addObject().put("digest", image.digest().toString()).put("bytes", image.size())
                        .put("keptBecause", why.isEmpty() ? "nothing (gc removes it)" : String.join("; ", why));
            }
        }
        ArrayNode holds = node.putArray("holds");
        store.heldNow().forEach((hold, kept) -> holds.addObject().put("hold", hold.subject()).put("why", hold.why())
                .put("images", kept.size()));
        GcReport gc = store.collectGarbage(true);
        node.putObject("gcWouldFree").put("files", gc.removals().size()).put("bytes", gc.bytes());
        FileStore filesystem = Files.getFileStore(store.root());
        node.putObject("filesystem").put("totalBytes", filesystem.getTotalSpace())
                .put("availableBytes", filesystem.getUsableSpace()).putNull("pruneWatermark");
        ArrayNode names = node.putArray("digests");
        images.forEach(i -> names.addObject().put("digest", i.digest().toString())
                .put("name", i.names().isEmpty() ? null : i.names().get(0).toString()));
        return node;
    }

    /** Pulls and pushes in flight, and the runs of pull, push, gc and prune of the last minutes. */
    private static ArrayNode activity(Path store) {
        ArrayNode runs = JSON.createArrayNode();
        for (Activity.Run run : Activity.read(store)) {
            ObjectNode node = runs.addObject().put("verb", run.verb()).put("subject", run.subject())
                    .put("state", run.orphaned() ? "killed" : run.state().name().toLowerCase(java.util.Locale.ROOT))
                    .put("pid", run.pid()).put("command", run.command())
                    .put("started", java.time.Instant.ofEpochMilli(run.startedMillis()).toString())
                    .put("updated", java.time.Instant.ofEpochMilli(run.updatedMillis()).toString())
                    .put("bytes", run.bytes()).put("totalBytes", run.totalBytes())
                    .put("bytesPerSecond", (long) run.rate()).put("files", run.files());
            if (run.error() != null) {
                node.put("error", run.error());
            }
        }
        return runs;
    }

    /** Staging files: uploads (and pulls) as the store sees them, with or without a daemon to ask. */
    private static ArrayNode staging(StoreDirectory store) {
        ArrayNode files = JSON.createArrayNode();
        try {
            for (StoreDirectory.StagingFile file : store.staging()) {
                files.addObject().put("file", store.root().relativize(file.file()).toString()).put("bytes", file.bytes())
                        .put("modified", file.modified().toString());
            }
        } catch (IOException e) {
            // the staging directory went while we listed: nothing in flight
        }
        return files;
    }
}
