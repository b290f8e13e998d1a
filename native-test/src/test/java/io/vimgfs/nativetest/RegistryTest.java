package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vimgfs pull} and {@code push} as a user runs them against Debian's docker-registry on a
 * loopback port (anonymous, htpasswd Basic, and Bearer tokens from a token server of the test's
 * own), with fixtures the test builds as OCI layouts and pushes with skopeo, and plain URLs from a
 * loopback file server. Only 127.0.0.1 is ever contacted.
 */
class RegistryTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private final List<Process> started = new ArrayList<>();

    @Test
    void pullTakesContainerDisksMachineOsDisksAndUrlsAndRefusesWhatIsNotASafeDisk() throws Exception {
        try {
            String registry = startRegistry("anonymous", "");
            Path store = dir.resolve("store");
            Path disk = qcow2("disk.qcow2", "0x5a");

            // A containerDisk in two layers (gzip, then zstd): the second whites out the first's file.
            Path cd = containerDisk("cd", List.of(
                    layer("l1", Map.of("disk/old.img", qcow2("old.qcow2", "0x11")), "gzip -n"),
                    layer("l2", Map.of("disk/.wh.old.img", empty(), "disk/disk.img", disk), "zstd -q")));
            skopeoPush(cd, registry + "/containerdisks/fedora:40", List.of());
            Shell.Result pulled = Shell.vimgfs(store, "pull", "--tls-verify=false", "docker://" + registry + "/containerdisks/fedora:40").ok();
            assertTrue(pulled.out().contains("sha256:" + Shell.sha256(disk)), pulled.out());
            assertTrue(ls(store).contains(registry + "/containerdisks/fedora:40 " + Shell.sha256(disk)), ls(store));

            // A machine-os index: the qemu/amd64 disk is xz, decoys for other disk types and arches.
            Path qemuDisk = qcow2("machine.qcow2", "0x77");
            Path applehv = Fixtures.small(dir, "applehv.raw", 4096, 1);
            Path arm = Fixtures.small(dir, "arm.raw", 4096, 2);
            Path index = machineOsIndex(List.of(
                    new MachineDisk("qemu", "amd64", compress(qemuDisk, "xz -T1", "podman-machine.x86_64.qemu.qcow2.xz")),
                    new MachineDisk("applehv", "amd64", compress(applehv, "zstd -q", "podman-machine.x86_64.applehv.raw.zst")),
                    new MachineDisk("qemu", "arm64", compress(arm, "gzip -n", "podman-machine.aarch64.qemu.qcow2.gz"))));
            skopeoPushAll(index, registry + "/podman/machine-os:5.3");
            Shell.vimgfs(store, "pull", "--tls-verify=false", "--arch", "x86_64", "docker://" + registry + "/podman/machine-os:5.3", "mos:qemu").ok();
            Shell.vimgfs(store, "pull", "--tls-verify=false", "--arch", "amd64", "--disktype", "applehv",
                    "docker://" + registry + "/podman/machine-os:5.3", "mos:applehv").ok();
            Shell.vimgfs(store, "pull", "--tls-verify=false", "--arch", "aarch64", "docker://" + registry + "/podman/machine-os:5.3", "mos:arm").ok();
            String listing = ls(store);
            assertTrue(listing.contains("mos:qemu " + Shell.sha256(qemuDisk)), listing);
            assertTrue(listing.contains("mos:applehv " + Shell.sha256(applehv)), listing);
            assertTrue(listing.contains("mos:arm " + Shell.sha256(arm)), listing);
            refused(store, "no disk for --disktype qemu --arch s390x", "pull", "--tls-verify=false", "--arch", "s390x",
                    "docker://" + registry + "/podman/machine-os:5.3", "mos:s390x");

            // An ordinary image, a hostile qcow2 inside a containerDisk, a missing tag, a wrong pin.
            Path ordinary = containerDisk("ordinary", List.of(layer("o1", Map.of("etc/hostname", Fixtures.small(dir, "hostname", 8, 3)), "gzip -n")));
            skopeoPush(ordinary, registry + "/library/busybox:1", List.of());
            Path hostile = dir.resolve("hostile.qcow2");
            Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", "-u", hostile.toString(), "1M").ok();
            skopeoPush(containerDisk("evil", List.of(layer("e1", Map.of("disk/disk.img", hostile), "gzip -n"))),
                    registry + "/evil/disk:1", List.of());
            int blobsBefore = blobCount(store);
            refused(store, "no disk in this image", "pull", "--tls-verify=false", "docker://" + registry + "/library/busybox:1");
            refused(store, "/etc/shadow", "pull", "--tls-verify=false", "docker://" + registry + "/evil/disk:1");
            refused(store, "manifest unknown", "pull", "--tls-verify=false", "docker://" + registry + "/containerdisks/fedora:41");
            refused(store, "does not match", "pull", "--tls-verify=false", "docker://" + registry + "/containerdisks/fedora:40",
                    "pinned:1@sha256:" + "0".repeat(64));
            refused(store, "--tls-verify=false", "pull", "docker://" + registry + "/containerdisks/fedora:40");
            assertEquals(blobsBefore, blobCount(store));
            assertFalse(ls(store).contains("evil") || ls(store).contains("busybox") || ls(store).contains("pinned"), ls(store));

            // Plain URLs: pinned, wrong pin, 404, and a download cut in the middle that resumes by Range.
            Path files = Files.createDirectories(dir.resolve("files"));
            Path big = Fixtures.randomQcow2(48);
            Files.copy(big, files.resolve("big.qcow2"));
            Path requests = dir.resolve("requests.log");
            int port = freePort();
            start(List.of("python3", resource("range-server.py").toString(), Integer.toString(port), files.toString(),
                    requests.toString()));
            waitFor("http://127.0.0.1:" + port + "/missing");
            String url = "http://127.0.0.1:" + port;
            String hex = Shell.sha256InProcess(big);
            Shell.vimgfs(store, "pull", url + "/plain/big.qcow2", "url:1@sha256:" + hex).ok();
            refused(store, "does not match", "pull", url + "/plain/big.qcow2", "url:2@sha256:" + "1".repeat(64));
            refused(store, "not found", "pull", "--tls-verify=false", url + "/plain/nothing.qcow2", "url:3");
            refused(store, "no pinned digest", "pull", url + "/plain/big.qcow2", "url:4");
            Shell.vimgfs(store, "pull", "--tls-verify=false", url + "/cut/big.qcow2", "url:5").ok();
            assertTrue(Files.readString(requests).lines().anyMatch(l -> l.startsWith("/cut/big.qcow2 bytes=")),
                    Files.readString(requests));
            assertTrue(ls(store).contains("url:5 " + hex), ls(store));
            assertFalse(ls(store).contains("url:2") || ls(store).contains("url:3"), ls(store));

            // SIGKILL in the middle of a slow pull: the store opens, fsck is clean, nothing half-placed.
            Process pull = Shell.spawn(Shell.java(), "-jar", Shell.jar().toString(), "--store", store.toString(), "pull",
                    "--tls-verify=false", url + "/slow/big.qcow2", "killed:1");
            // kill it once bytes have arrived (a fixed wait may end before the JVM has even started)
            Path staging = store.resolve(".vimgfs").resolve("staging");
            Eventually.within(Duration.ofSeconds(60), "the slow pull is downloading",
                    () -> !pull.isAlive() || stagedBytes(staging) > 0);
            assertTrue(pull.isAlive(), "the slow pull finished before it could be killed");
            pull.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            assertFalse(ls(store).contains("killed:1"), ls(store));
            assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
            Shell.vimgfs(store, "gc").ok();
            try (var staged = Files.list(store.resolve(".vimgfs").resolve("staging"))) {
                assertEquals(0, staged.count(), "gc left the killed pull's staging file");
            }
        } finally {
            stopAll();
        }
    }

    /**
     * A 200 MiB vimgfs image comes in concurrent 16 MiB ranges. {@code kill -9} of the pull in the
     * middle, then the same pull again: it finishes, fetches little more than the ranges the range
     * map lacked (counted by a throttling proxy in front of docker-registry), fsck is clean and
     * nothing is left in staging. A gc while the pull runs, and one after the kill, keep the
     * partial download.
     */
    @Test
    void aPullKilledMidDownloadResumesWhereItStopped() throws Exception {
        try {
            String registry = startRegistry("resume", "");
            Path source = dir.resolve("source");
            Path disk = Fixtures.random(200);
            String hex = Shell.sha256InProcess(disk);
            Shell.vimgfs(source, "import", disk.toString(), "big:1").ok();
            Shell.vimgfs(source, "push", "--quiet", "--tls-verify=false", "big:1", "docker://" + registry + "/vm/big:1").ok();
            Path store = dir.resolve("store");
            Path map = store.resolve(".vimgfs/staging/sha256-" + hex + ".ranges");
            try (ThrottlingProxy proxy = new ThrottlingProxy(Integer.parseInt(registry.split(":")[1]), 6L << 20)) {
                String through = "docker://127.0.0.1:" + proxy.port() + "/vm/big:1";
                Process pull = Shell.spawn(Shell.java(), "-jar", Shell.jar().toString(), "--store", store.toString(), "pull",
                        "--tls-verify=false", through, "big:1");
                Eventually.within(Duration.ofSeconds(90), "three ranges are recorded", () -> !pull.isAlive() || recorded(map) >= 3);
                Shell.vimgfs(store, "gc").ok();
                assertTrue(Files.exists(map) && recorded(map) >= 3, "gc kept the running pull's range map");
                assertTrue(pull.isAlive(), "the pull finished before it could be killed");
                pull.destroyForcibly().waitFor(10, TimeUnit.SECONDS); // SIGKILL
                Shell.vimgfs(store, "gc").ok();
                assertTrue(Files.exists(map), "gc keeps a killed pull's partial download for a rerun");
                long firstRun = proxy.bytesSent();
                int ranges = recorded(map);
                assertTrue(firstRun < 200 * Fixtures.MIB, "killed part-way: " + firstRun + " bytes");
                assertFalse(ls(store).contains("big:1"), ls(store));

                Shell.vimgfs(store, "pull", "--quiet", "--tls-verify=false", through, "big:1").ok();

                long secondRun = proxy.bytesSent() - firstRun;
                long missing = 200 * Fixtures.MIB - ranges * 16 * Fixtures.MIB;
                assertTrue(secondRun <= missing + Fixtures.MIB, "the rerun fetched " + secondRun + " bytes; the "
                        + ranges + " ranges recorded before the kill left " + missing + " to fetch");
                assertTrue(firstRun + secondRun <= 200 * Fixtures.MIB + 4 * 16 * Fixtures.MIB + Fixtures.MIB,
                        "at most the ranges in flight at the kill came twice: " + (firstRun + secondRun) + " bytes in all");
            }
            assertTrue(ls(store).contains("big:1 " + hex), ls(store));
            assertEquals(hex, Shell.sha256InProcess(store.resolve("blobs/sha256/" + hex)));
            assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
            try (var staged = Files.list(store.resolve(".vimgfs").resolve("staging"))) {
                assertEquals(0, staged.count(), "the partial download is gone once placed");
            }
        } finally {
            stopAll();
        }
    }

    /** How many ranges a range map records as durable (its header is 24 bytes, then a byte a range). */
    private static int recorded(Path map) {
        try {
            byte[] bytes = Files.readAllBytes(map);
            int count = 0;
            for (int i = 24; i < bytes.length; i++) {
                count += bytes[i] == 1 ? 1 : 0;
            }
            return count;
        } catch (IOException e) {
            return 0;
        }
    }

    /**
     * An operator watching a mounted store while images come and go: a pull in flight shows in
     * {@code status} with its bytes so far; pulls, pushes and gc runs of the command line, and
     * the mount's own collection and journal and index writes, move the scraped numbers.
     */
    @Test
    void pullsPushesAndGcRunsIntoAMountedStoreShowInStatusAndTheScrapedMetrics() throws Exception {
        try {
            Path files = Files.createDirectories(dir.resolve("files"));
            Path disk = Fixtures.randomQcow2(8);
            Files.copy(disk, files.resolve("disk.qcow2"));
            long diskBytes = Files.size(disk);
            int port = freePort();
            start(List.of("python3", resource("range-server.py").toString(), Integer.toString(port), files.toString(),
                    dir.resolve("requests.log").toString()));
            waitFor("http://127.0.0.1:" + port + "/missing");
            String url = "http://127.0.0.1:" + port;
            String registry = startRegistry("watched", "");
            int metrics = freePort();
            try (MountedStore m = MountedStore.mount(dir, "metrics=" + metrics)) {
                Map<String, Double> before = Scrape.metrics(metrics);
                Shell.vimgfs(m.store, "pull", "--tls-verify=false", url + "/plain/disk.qcow2", "url:1").ok();
                Eventually.within(Duration.ofSeconds(5), "the pulled image in the mount", () -> m.exists("tags/url/1"));
                refused(m.store, "not found", "pull", "--tls-verify=false", url + "/plain/nothing.qcow2", "url:2");
                Shell.vimgfs(m.store, "push", "--tls-verify=false", "url:1", "docker://" + registry + "/vm/disk:1").ok();

                // A slow pull in flight: status shows it with its bytes so far, then it is killed.
                Process slow = Shell.spawn(Shell.java(), "-jar", Shell.jar().toString(), "--store", m.store.toString(), "pull",
                        "--tls-verify=false", url + "/slow/disk.qcow2", "slow:1");
                try {
                    Eventually.within(Duration.ofSeconds(20), "status shows the slow pull in flight with bytes moved", () -> {
                        JsonNode activity = statusJson(m.store).path("activity");
                        for (JsonNode run : activity) {
                            if (run.path("state").asText().equals("running") && run.path("bytes").asLong() > 0) {
                                return run.path("subject").asText().equals(url + "/slow/disk.qcow2");
                            }
                        }
                        return false;
                    });
                    String text = Shell.vimgfs(m.store, "status").ok().out();
                    assertTrue(text.contains("pulls and pushes in flight: 1"), text);
                    assertTrue(text.contains("pull " + url + "/slow/disk.qcow2: "), text);
                    Eventually.within(Duration.ofSeconds(10), "the metrics count the pull in flight",
                            () -> scrapeQuietly(metrics, "vimgfs_transfers_in_flight{verb=\"pull\"}") == 1);
                } finally {
                    slow.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
                Shell.run("rm", m.at("tags/url/1")).ok(); // its last name: the image goes, the mount deletes its blob
                Shell.vimgfs(m.store, "gc").ok(); // the killed pull's staging file

                Eventually.within(Duration.ofSeconds(10), "the mount counted every run", () -> {
                    Map<String, Double> now = scrapeAll(metrics);
                    return Scrape.sum(now, "vimgfs_pulls_total{result=\"killed\"") >= 1
                            && Scrape.sum(now, "vimgfs_gc_runs_total{origin=\"command\"") >= 1
                            && Scrape.sum(now, "vimgfs_gc_freed_bytes_total{origin=\"mount\"") >= diskBytes;
                });
                Map<String, Double> after = Scrape.metrics(metrics);
                assertEquals(1.0, Scrape.sum(after, "vimgfs_pulls_total{result=\"ok\"") - Scrape.sum(before, "vimgfs_pulls_total{result=\"ok\""), after.toString());
                assertEquals(1.0, Scrape.sum(after, "vimgfs_pulls_total{result=\"failed\"") - Scrape.sum(before, "vimgfs_pulls_total{result=\"failed\""));
                assertEquals(1.0, Scrape.sum(after, "vimgfs_pulls_total{result=\"killed\""));
                assertTrue(Scrape.sum(after, "vimgfs_pulled_bytes_total") >= diskBytes, "pulled bytes: " + after);
                assertEquals(1.0, Scrape.sum(after, "vimgfs_pushes_total{result=\"ok\""));
                assertTrue(Scrape.sum(after, "vimgfs_pushed_bytes_total") >= diskBytes, "pushed bytes: " + after);
                assertEquals(0.0, Scrape.sum(after, "vimgfs_transfers_in_flight"));
                assertTrue(Scrape.sum(after, "vimgfs_journal_append_duration_seconds_count")
                        > Scrape.sum(before, "vimgfs_journal_append_duration_seconds_count"), "the mount's own commits (a refresh is not one)");
                assertTrue(Scrape.sum(after, "vimgfs_index_write_duration_seconds_count") >= 1, "index.json rewritten by the mount");
                assertTrue(Scrape.sum(after, "vimgfs_gc_runs_total{origin=\"mount\"") >= 1, "the mount's sweep after rm: " + after);

                String recent = Shell.vimgfs(m.store, "status").ok().out();
                assertTrue(recent.contains("ok     pull " + url + "/plain/disk.qcow2"), recent);
                assertTrue(recent.contains("failed pull " + url + "/plain/nothing.qcow2"), recent);
                assertTrue(recent.contains("killed pull " + url + "/slow/disk.qcow2"), recent);
                assertTrue(recent.contains("ok     push docker://" + registry + "/vm/disk:1"), recent);
                assertTrue(recent.contains("pulls and pushes in flight: none"), recent);
            }
        } finally {
            stopAll();
        }
    }

    private static JsonNode statusJson(Path store) {
        try {
            return JSON.readTree(Shell.vimgfs(store, "status", "--json").ok().out());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Map<String, Double> scrapeAll(int port) {
        try {
            return Scrape.metrics(port);
        } catch (Exception e) {
            throw new AssertionError("scraping 127.0.0.1:" + port, e);
        }
    }

    private static double scrapeQuietly(int port, String sample) {
        return Scrape.sum(scrapeAll(port), sample);
    }

    /**
     * {@code pull --lazy} against docker-registry into a mounted store: it returns with the disk
     * served over NBD by the mount; QEMU reads the whole disk byte for byte through an overlay
     * {@code vimgfs overlay} wrote (every chunk verified on its way), the mount names the image once
     * it is whole, and the overlay keeps reading after that. A byte flipped in the registry's copy
     * of another disk is never served (QEMU gets EIO, the mount's log names the chunk and both
     * digests) and nothing of it is placed.
     */
    @Test
    void aLazyPullIsServedOverNbdVerifiedAndPlacedWhenWhole() throws Exception {
        try {
            String registry = startRegistry("lazy", "");
            Path source = dir.resolve("lazy-source");
            Path disk = dir.resolve("lazy.raw");
            byte[] bytes = new byte[24 << 20];
            new java.util.Random(24).nextBytes(bytes);
            java.util.Arrays.fill(bytes, 8 << 20, 16 << 20, (byte) 0); // eight zero chunks, never fetched
            Files.write(disk, bytes);
            String hex = Shell.sha256(disk);
            Shell.vimgfs(source, "import", disk.toString(), "vm/lazy:1").ok();
            Shell.vimgfs(source, "push", "--quiet", "--tls-verify=false", "vm/lazy:1", "docker://" + registry + "/vm/lazy:1").ok();
            Shell.vimgfs(source, "push", "--quiet", "--tls-verify=false", "--no-chunk-index", "vm/lazy:1",
                    "docker://" + registry + "/vm/plain:1").ok();
            Path bad = dir.resolve("bad.raw");
            bytes[3 << 20] ^= 1;
            Files.write(bad, bytes);
            String badHex = Shell.sha256(bad);
            Shell.vimgfs(source, "import", bad.toString(), "vm/bad:1").ok();
            Shell.vimgfs(source, "push", "--quiet", "--tls-verify=false", "vm/bad:1", "docker://" + registry + "/vm/bad:1").ok();
            flipInRegistry(dir.resolve("registry-lazy"), badHex, (3 << 20) + 100); // now its chunk 3 lies

            Path store = dir.resolve("lazy-store");
            String noMount = "no mount of this store is running to serve the disk while it downloads: mount it"
                    + " (vimgfs MOUNTPOINT) or pull without --lazy";
            Readme.assertQuotes("(\"" + noMount + "\")", noMount, Shell.vimgfs(store, "pull", "--lazy", "--tls-verify=false",
                    "docker://" + registry + "/vm/lazy:1", "vm/lazy:1").failed().err());
            Path plain = dir.resolve("plain-store");
            Readme.assertQuotes("(\"cannot be pulled lazily: …; pulling it whole\")", "cannot be pulled lazily: …; pulling it whole",
                    Shell.vimgfs(plain, "pull", "--lazy",
                    "--tls-verify=false", "docker://" + registry + "/vm/plain:1", "vm/plain:1").ok().err());
            assertTrue(ls(plain).contains("vm/plain:1 " + hex), "pulled whole: " + ls(plain));
            // 3 MiB/s per connection: the fill takes seconds, so QEMU reads while the disk is still arriving
            int metrics = freePort();
            try (ThrottlingProxy proxy = new ThrottlingProxy(Integer.parseInt(registry.split(":")[1]), 3L << 20);
                 MountedStore m = MountedStore.mount(store, dir.resolve("lazy-mnt"), "metrics=" + metrics)) {
                String through = "127.0.0.1:" + proxy.port();
                String pulled = Shell.vimgfs(store, "pull", "--lazy", "--tls-verify=false", "docker://" + through
                        + "/vm/lazy:1", "vm/lazy:1").ok().out();
                assertTrue(pulled.contains("vm/lazy:1 sha256:" + hex + " lazy: nbd+unix:///sha256:" + hex + "?socket="), pulled);
                String status = Shell.vimgfs(store, "status").ok().out();
                assertTrue(status.contains("lazy pulls served over NBD: 1") && status.contains("sha256:" + hex + " "), status);
                Path overlay = dir.resolve("vm.qcow2");
                String written = Shell.vimgfs(store, "overlay", "vm/lazy:1", overlay.toString()).ok().out();
                assertTrue(written.contains("over NBD at") && written.contains("reconnect-delay 30 s"), written);
                Shell.Result compare = Shell.run("qemu-img", "compare", "-F", "raw", overlay.toString(), disk.toString()).ok();
                assertTrue(compare.out().contains("Images are identical"), compare.out());
                Eventually.within(Duration.ofSeconds(60), "the lazy image is placed once whole",
                        () -> ls(store).contains("vm/lazy:1 " + hex));
                assertTrue(m.exists("tags/vm/lazy/1"));
                assertEquals(hex, Shell.sha256(m.path("tags/vm/lazy/1")));
                assertTrue(Shell.run("qemu-img", "compare", "-F", "raw", overlay.toString(), disk.toString()).ok().out()
                        .contains("Images are identical"), "the overlay reads on from the placed blob");
                assertTrue(Shell.vimgfs(store, "overlay", "vm/lazy:1", overlay.toString()).failed().err()
                        .contains("exists; remove it or choose another file"));
                Path byPath = dir.resolve("by-path.qcow2");
                String placedOverlay = Shell.vimgfs(store, "overlay", "vm/lazy:1", byPath.toString()).ok().out();
                assertTrue(placedOverlay.contains(" at " + m.at("by-digest/sha256/" + hex)), "a placed image by path: "
                        + placedOverlay);
                assertTrue(Shell.run("qemu-img", "compare", "-F", "raw", byPath.toString(), disk.toString()).ok().out()
                        .contains("Images are identical"));

                Shell.vimgfs(store, "pull", "--lazy", "--tls-verify=false", "docker://" + through + "/vm/bad:1", "vm/bad:1").ok();
                Path badOverlay = dir.resolve("bad.qcow2");
                Shell.vimgfs(store, "overlay", "vm/bad:1", badOverlay.toString()).ok();
                Shell.Result refused = Shell.run("qemu-io", "-r", "-c", "read 3M 64k", badOverlay.toString());
                assertTrue(refused.out().contains("Input/output error") || refused.err().contains("Input/output error"),
                        refused.out() + refused.err());
                Shell.Result good = Shell.run("qemu-io", "-r", "-c", "read -P 0 8M 64k", badOverlay.toString()).ok();
                assertTrue(good.out().contains("read 65536/65536"), "other chunks are served: " + good.out());
                Eventually.within(Duration.ofSeconds(30), "the mount's log names the chunk and both digests",
                        () -> Shell.run("grep", "-q", "chunk 3 (bytes 3145728-4194303) of sha256:" + badHex,
                                store.resolve(".vimgfs/mount.log").toString()).exit() == 0);
                String badStatus = Shell.vimgfs(store, "status").ok().out();
                assertTrue(badStatus.contains("sha256:" + badHex) && badStatus.contains("bad chunks) — see the mount's log"),
                        badStatus);
                assertTrue(scrapeQuietly(metrics, "vimgfs_lazy_chunk_failures{digest=\"sha256:" + badHex + "\"") >= 1);
                assertEquals(24 << 20, scrapeQuietly(metrics, "vimgfs_lazy_size_bytes{digest=\"sha256:" + hex + "\""), 0.5);
                Thread.sleep(2000); // the background fill meets the same chunk and stops
                assertFalse(ls(store).contains("vm/bad:1"), "nothing of the lying disk is placed: " + ls(store));
                assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
            }
        } finally {
            stopAll();
        }
    }

    /**
     * Issue 19 step 4, the reader's side: QEMU reads a lazily pulled disk through its overlay while
     * the mount is killed with SIGKILL at about 10 %, 50 % and 90 % of the fetch and started again
     * each time (the new mount takes over the dead mountpoint). QEMU holds its reads
     * (reconnect-delay) and replays them: the read of the whole disk ends without an error and byte
     * for byte, each restart resumes from the range map (what is fetched again is bounded by the
     * ranges in flight at each kill), and the disk is placed with its digest.
     */
    @Test
    void aLazyDiskIsReadOnThroughAMountKilledThreeTimesMidFetch() throws Exception {
        try {
            String registry = startRegistry("lazykill", "");
            Path source = dir.resolve("kill-source");
            long size = 64L << 20;
            Path disk = Fixtures.small(dir, "kill.raw", (int) size, 32);
            String hex = Shell.sha256(disk);
            Shell.vimgfs(source, "import", disk.toString(), "vm/kill:1").ok();
            Shell.vimgfs(source, "push", "--quiet", "--tls-verify=false", "vm/kill:1", "docker://" + registry + "/vm/kill:1").ok();
            Path store = dir.resolve("kill-store");
            // 512 KiB/s per connection: the fill's 4 ranges bring the disk in about 30 s, time for three kills
            try (ThrottlingProxy proxy = new ThrottlingProxy(Integer.parseInt(registry.split(":")[1]), 512L << 10);
                 MountedStore m = MountedStore.mount(store, dir.resolve("kill-mnt"))) {
                Shell.vimgfs(store, "pull", "--lazy", "--quiet", "--tls-verify=false", "docker://127.0.0.1:" + proxy.port()
                        + "/vm/kill:1", "vm/kill:1").ok();
                Path overlay = dir.resolve("kill.qcow2");
                Shell.vimgfs(store, "overlay", "vm/kill:1", overlay.toString()).ok();
                Path compared = dir.resolve("compare.out");
                Process reader = new ProcessBuilder("qemu-img", "compare", "-F", "raw", overlay.toString(), disk.toString())
                        .redirectErrorStream(true).redirectOutput(compared.toFile()).start();
                // QEMU replays what it asked over an established connection; its first connect is not retried
                Eventually.within(Duration.ofSeconds(60), "qemu-img is connected to the export",
                        () -> Shell.sh("ls -l /proc/" + reader.pid() + "/fd").out().contains("socket:"));
                List<Long> atKills = new ArrayList<>();
                for (int percent : new int[] {10, 50, 90}) {
                    long at = size * percent / 100;
                    Eventually.within(Duration.ofSeconds(90), percent + " % of the disk has arrived (by the range map)",
                            () -> recordedChunks(store, hex) * (1L << 20) >= at || ls(store).contains("vm/kill:1 " + hex));
                    if (ls(store).contains("vm/kill:1 " + hex)) {
                        break; // placed before this kill: the kills before it are what the test is about
                    }
                    long daemon = m.daemonPid();
                    Shell.run("kill", "-KILL", Long.toString(daemon)).ok();
                    MountedStore.awaitExit(daemon);
                    atKills.add(proxy.bytesSent());
                    m.start(); // takes over the dead mountpoint
                }
                assertFalse(atKills.isEmpty(), "the mount was killed mid-fetch at least once");
                assertTrue(reader.waitFor(180, TimeUnit.SECONDS), "qemu-img compare finished");
                String out = Files.readString(compared);
                assertEquals(0, reader.exitValue(), "no I/O error reached the reader: " + out);
                assertTrue(out.contains("Images are identical"), out);
                Eventually.within(Duration.ofSeconds(60), "the disk is placed", () -> ls(store).contains("vm/kill:1 " + hex));
                long window = 4 * (8L << 20) + (4L << 20) + (1L << 20); // the fill's ranges, a reader's, headers
                assertTrue(proxy.bytesSent() <= size + atKills.size() * window, "fetched " + proxy.bytesSent()
                        + " bytes for a " + size + "-byte disk with kills at " + atKills);
                System.out.printf("lazy kill test: %d bytes fetched for %d, kills at %s%n", proxy.bytesSent(), size, atKills);
                assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
            }
        } finally {
            stopAll();
        }
    }

    /** The chunks a partial download's range map records (each a byte after a 24-byte header). */
    private static long recordedChunks(Path store, String hex) {
        try {
            byte[] map = Files.readAllBytes(store.resolve(".vimgfs/staging/sha256-" + hex + ".ranges"));
            long n = 0;
            for (int i = 24; i < map.length; i++) {
                n += map[i] == 1 ? 1 : 0;
            }
            return n;
        } catch (IOException e) {
            return 0;
        }
    }

    /** Flips one byte of a blob in docker-registry's filesystem storage, which serves it as it is. */
    private static void flipInRegistry(Path storage, String hex, long offset) throws IOException {
        Path data = storage.resolve("docker/registry/v2/blobs/sha256/" + hex.substring(0, 2) + "/" + hex + "/data");
        try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(data,
                java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer one = java.nio.ByteBuffer.allocate(1);
            channel.read(one, offset);
            one.put(0, (byte) (one.get(0) ^ 1)).rewind();
            channel.write(one, offset);
        }
    }

    @Test
    void pushThenPullRoundTripsDigestsThroughBasicAndBearerRegistries() throws Exception {
        try {
            Path storeA = dir.resolve("a");
            Path storeB = dir.resolve("b");
            Path disk = qcow2("disk.qcow2", "0x42");
            Shell.vimgfs(storeA, "import", disk.toString(), "cirros:0.6.2").ok();
            String manifestHex = manifestDigest(storeA, "cirros:0.6.2");

            // htpasswd Basic: no credentials is refused with the way out; with them, byte-identical.
            Path htpasswd = dir.resolve("htpasswd");
            Files.writeString(htpasswd, Shell.run("htpasswd", "-Bbn", "alice", "s3cret").ok().out());
            String basic = startRegistry("htpasswd", "  htpasswd:\n    realm: vimgfs-test\n    path: " + htpasswd + "\n");
            refused(storeA, "authentication required", "push", "--tls-verify=false", "cirros:0.6.2", "docker://" + basic + "/vm/cirros:0.6.2");
            refused(storeA, "refused the credentials", "push", "--tls-verify=false", "--creds", "alice:wrong", "cirros:0.6.2",
                    "docker://" + basic + "/vm/cirros:0.6.2");
            Shell.vimgfs(storeA, "push", "--tls-verify=false", "--creds", "alice:s3cret", "--no-chunk-index", "cirros:0.6.2",
                    "docker://" + basic + "/vm/cirros:plain").ok();
            assertEquals(Files.readString(storeA.resolve("blobs/sha256/" + manifestHex)), rawManifest(basic, "vm/cirros:plain"),
                    "--no-chunk-index sends the stored manifest byte for byte");
            Shell.vimgfs(storeA, "push", "--tls-verify=false", "--creds", "alice:s3cret", "cirros:0.6.2",
                    "docker://" + basic + "/vm/cirros:0.6.2").ok();
            String raw = rawManifest(basic, "vm/cirros:0.6.2");
            String chunksHex = assertChunkIndexed(Files.readString(storeA.resolve("blobs/sha256/" + manifestHex)), raw);
            String pushedHex = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(raw.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
            Path authFile = dir.resolve("auth.json");
            Files.writeString(authFile, "{\"auths\":{\"" + basic + "\":{\"auth\":\""
                    + java.util.Base64.getEncoder().encodeToString("alice:s3cret".getBytes()) + "\"}}}");
            Shell.vimgfs(storeB, "pull", "--tls-verify=false", "--authfile", authFile.toString(),
                    "docker://" + basic + "/vm/cirros:0.6.2", "cirros:0.6.2").ok();
            assertEquals(pushedHex, manifestDigest(storeB, "cirros:0.6.2"), "the pull keeps the manifest the registry holds");
            assertEquals(Shell.sha256(disk), ls(storeB).lines().filter(l -> l.startsWith("cirros:0.6.2 ")).findFirst()
                    .orElseThrow().split("\\s+")[1]);
            assertChunkIndexOf(disk, storeB.resolve("blobs/sha256/" + chunksHex));
            assertTrue(Shell.vimgfs(storeB, "fsck").ok().out().contains("clean"));
            Shell.vimgfs(storeB, "push", "--tls-verify=false", "--creds", "alice:s3cret", "cirros:0.6.2",
                    "docker://" + basic + "/vm/cirros:from-b").ok();
            assertEquals(raw, rawManifest(basic, "vm/cirros:from-b"), "an image pulled with its index is pushed as pulled");
            // $REGISTRY_AUTH_FILE, and a second push finds every blob there already (HEAD) and still succeeds.
            Shell.Result again = Shell.run(Shell.DEFAULT_TIMEOUT, Map.of("REGISTRY_AUTH_FILE", authFile.toString()),
                    List.of(Shell.java(), "-jar", Shell.jar().toString(), "--store", storeA.toString(), "push",
                            "--tls-verify=false", "cirros:0.6.2", "docker://" + basic + "/vm/cirros:again"));
            assertEquals(0, again.exit(), again.err());

            // Bearer tokens from our token server; containerDisk format, pulled back to the same disk digest.
            int tokenPort = freePort();
            Path bundle = dir.resolve("token-bundle.pem");
            Path tokenLog = dir.resolve("token.log");
            start(List.of("python3", resource("token-server.py").toString(), Integer.toString(tokenPort), bundle.toString(),
                    "vimgfs-test", "vimgfs-test-issuer", "bob", "t0ken", tokenLog.toString()));
            Eventually.within(Duration.ofSeconds(60), "the token server writes its certificate", () -> Files.exists(bundle));
            waitFor("http://127.0.0.1:" + tokenPort + "/token"); // it listens only after writing the bundle
            String bearer = startRegistry("token", "  token:\n    realm: http://127.0.0.1:" + tokenPort + "/token\n"
                    + "    service: vimgfs-test\n    issuer: vimgfs-test-issuer\n    rootcertbundle: " + bundle + "\n");
            refused(storeA, "authentication required", "push", "--tls-verify=false", "cirros:0.6.2", "docker://" + bearer + "/vm/cirros:1");
            Shell.vimgfs(storeA, "push", "--tls-verify=false", "--creds", "bob:t0ken", "--format", "containerdisk",
                    "cirros:0.6.2", "docker://" + bearer + "/kubevirt/cirros:1").ok();
            Shell.vimgfs(storeA, "push", "--tls-verify=false", "--creds", "bob:t0ken", "cirros:0.6.2",
                    "docker://" + bearer + "/vm/cirros:1").ok();
            Path storeC = dir.resolve("c");
            // The vimgfs artifact first: a disk already stored keeps the manifest it was placed with.
            Shell.vimgfs(storeC, "pull", "--tls-verify=false", "--creds", "bob:t0ken", "docker://" + bearer + "/vm/cirros:1", "vm:1").ok();
            Shell.vimgfs(storeC, "pull", "--tls-verify=false", "--creds", "bob:t0ken", "docker://" + bearer + "/kubevirt/cirros:1", "cd:1").ok();
            assertTrue(ls(storeC).contains("cd:1 " + Shell.sha256(disk)), ls(storeC));
            assertEquals(pushedHex, manifestDigest(storeC, "vm:1"), "the same image pushed twice has the same manifest digest");
            assertTrue(Files.readString(tokenLog).contains("scope=repository%3Akubevirt%2Fcirros%3Apull%2Cpush"),
                    Files.readString(tokenLog));

            // The containerDisk layer is what KubeVirt expects: disk/disk.img, 107:107, 0444.
            Path copied = dir.resolve("copied");
            Shell.run("skopeo", "copy", "--src-tls-verify=false", "--src-creds", "bob:t0ken",
                    "docker://" + bearer + "/kubevirt/cirros:1", "dir:" + copied).ok();
            JsonNode manifest = JSON.readTree(copied.resolve("manifest.json").toFile());
            String layer = manifest.path("layers").get(0).path("digest").asText().substring("sha256:".length());
            String listing = Shell.run("tar", "-tvzf", copied.resolve(layer).toString(), "--numeric-owner").ok().out();
            assertTrue(listing.lines().anyMatch(l -> l.startsWith("-r--r--r-- 107/107") && l.endsWith(" disk/disk.img")), listing);
            assertTrue(Shell.vimgfs(storeC, "fsck").ok().out().contains("clean"));
        } finally {
            stopAll();
        }
    }

    // ---- fixtures ------------------------------------------------------------------------

    private Path qcow2(String name, String pattern) {
        Path image = dir.resolve(name);
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", image.toString(), "16M").ok();
        Shell.run("qemu-io", "-c", "write -P " + pattern + " 0 1M", image.toString()).ok();
        return image;
    }

    private Path empty() throws IOException {
        Path file = dir.resolve("empty-" + System.nanoTime());
        Files.createFile(file);
        return file;
    }

    /** A layer file: a tar of the given paths, compressed by the given filter; with its diff ID. */
    private record Layer(Path file, String diffId, String mediaType) {
    }

    private Layer layer(String name, Map<String, Path> entries, String compressor) throws IOException {
        Path root = dir.resolve("root-" + name);
        for (Map.Entry<String, Path> e : entries.entrySet()) {
            Path target = root.resolve(e.getKey());
            Files.createDirectories(target.getParent());
            Files.copy(e.getValue(), target);
        }
        Path tar = dir.resolve(name + ".tar");
        Shell.run("tar", "--owner=107", "--group=107", "--sort=name", "-cf", tar.toString(), "-C", root.toString(), ".").ok();
        Path compressed = dir.resolve(name + ".tar.c");
        Shell.sh(compressor + " < " + tar + " > " + compressed).ok();
        String type = compressor.startsWith("zstd") ? "application/vnd.oci.image.layer.v1.tar+zstd"
                : "application/vnd.oci.image.layer.v1.tar+gzip";
        return new Layer(compressed, "sha256:" + Shell.sha256(tar), type);
    }

    /** An OCI layout with one image of the given layers, tagged "image". */
    private Path containerDisk(String name, List<Layer> layers) throws IOException {
        Path layout = dir.resolve("layout-" + name);
        ObjectNode config = JSON.createObjectNode().put("architecture", "amd64").put("os", "linux");
        ArrayNode diffIds = config.putObject("rootfs").put("type", "layers").putArray("diff_ids");
        ObjectNode manifest = JSON.createObjectNode().put("schemaVersion", 2)
                .put("mediaType", "application/vnd.oci.image.manifest.v1+json");
        ArrayNode layerArray = JSON.createArrayNode();
        for (Layer layer : layers) {
            diffIds.add(layer.diffId());
            layerArray.add(blob(layout, Files.readAllBytes(layer.file()), layer.mediaType()));
        }
        manifest.set("config", blob(layout, JSON.writeValueAsBytes(config), "application/vnd.oci.image.config.v1+json"));
        manifest.set("layers", layerArray);
        writeIndex(layout, blob(layout, JSON.writeValueAsBytes(manifest), "application/vnd.oci.image.manifest.v1+json"));
        return layout;
    }

    private record MachineDisk(String diskType, String arch, Path compressed) {
    }

    private Path compress(Path file, String compressor, String title) {
        Path out = dir.resolve(title);
        Shell.sh(compressor + " < " + file + " > " + out).ok();
        return out;
    }

    /** An OCI layout whose "image" is an index of single-layer artifacts, as podman's machine-os images are. */
    private Path machineOsIndex(List<MachineDisk> disks) throws IOException {
        Path layout = dir.resolve("layout-machine-os");
        ObjectNode index = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", "application/vnd.oci.image.index.v1+json");
        ArrayNode manifests = index.putArray("manifests");
        for (MachineDisk disk : disks) {
            ObjectNode layer = blob(layout, Files.readAllBytes(disk.compressed()), "application/zstd");
            layer.putObject("annotations").put("org.opencontainers.image.title", disk.compressed().getFileName().toString());
            ObjectNode manifest = JSON.createObjectNode().put("schemaVersion", 2)
                    .put("mediaType", "application/vnd.oci.image.manifest.v1+json")
                    .put("artifactType", "application/x-qemu-disk");
            manifest.set("config", blob(layout, "{}".getBytes(), "application/vnd.oci.empty.v1+json"));
            manifest.putArray("layers").add(layer);
            manifest.putObject("annotations").put("disktype", disk.diskType());
            ObjectNode descriptor = blob(layout, JSON.writeValueAsBytes(manifest), "application/vnd.oci.image.manifest.v1+json");
            descriptor.putObject("platform").put("architecture", disk.arch()).put("os", "linux");
            descriptor.putObject("annotations").put("disktype", disk.diskType());
            manifests.add(descriptor);
        }
        writeIndex(layout, blob(layout, JSON.writeValueAsBytes(index), "application/vnd.oci.image.index.v1+json"));
        return layout;
    }

    private static ObjectNode blob(Path layout, byte[] content, String mediaType) throws IOException {
        Path blobs = Files.createDirectories(layout.resolve("blobs/sha256"));
        String hex = sha256(content);
        Files.write(blobs.resolve(hex), content);
        return JSON.createObjectNode().put("mediaType", mediaType).put("digest", "sha256:" + hex).put("size", content.length);
    }

    private static void writeIndex(Path layout, ObjectNode descriptor) throws IOException {
        descriptor.putObject("annotations").put("org.opencontainers.image.ref.name", "image");
        ObjectNode index = JSON.createObjectNode().put("schemaVersion", 2);
        index.putArray("manifests").add(descriptor);
        Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(index));
        Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
    }

    private static String sha256(byte[] content) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(content));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    private static void skopeoPush(Path layout, String destination, List<String> extra) {
        List<String> command = new ArrayList<>(List.of("skopeo", "copy", "--dest-tls-verify=false"));
        command.addAll(extra);
        command.addAll(List.of("oci:" + layout + ":image", "docker://" + destination));
        Shell.run(Shell.DEFAULT_TIMEOUT, Map.of(), command).ok();
    }

    private static void skopeoPushAll(Path layout, String destination) {
        skopeoPush(layout, destination, List.of("--all"));
    }

    // ---- servers -------------------------------------------------------------------------

    /** Starts docker-registry on a free loopback port with the given auth section; returns 127.0.0.1:PORT. */
    private String startRegistry(String name, String auth) throws Exception {
        int port = freePort();
        Path config = dir.resolve("registry-" + name + ".yml");
        Files.writeString(config, "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                + dir.resolve("registry-" + name) + "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + port
                + "\n  secret: vimgfs-test\n" + (auth.isEmpty() ? "" : "auth:\n" + auth));
        start(List.of("docker-registry", "serve", config.toString()));
        waitFor("http://127.0.0.1:" + port + "/v2/");
        return "127.0.0.1:" + port;
    }

    private void start(List<String> command) throws IOException {
        started.add(new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("server-" + started.size() + ".log").toFile()).start());
    }

    private void stopAll() throws InterruptedException {
        for (Process process : started) {
            process.destroy();
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        }
        started.clear();
    }

    /** Waits until something answers HTTP at the url: a server start on a loaded machine can take many seconds. */
    private void waitFor(String url) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            try {
                http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                        HttpResponse.BodyHandlers.discarding());
                return;
            } catch (IOException e) {
                if (started.stream().anyMatch(p -> !p.isAlive())) {
                    throw new AssertionError("a server of this test exited (its port taken?) before " + url + " answered; see "
                            + dir.resolve("server-*.log"), e);
                }
                Thread.sleep(50);
            }
        }
        throw new AssertionError("nothing answered at " + url + " within 60 s");
    }

    /** Bytes in the store's staging files: what an unfinished pull has written so far. */
    private static long stagedBytes(Path staging) {
        try (var files = Files.list(staging)) {
            return files.mapToLong(f -> f.toFile().length()).sum();
        } catch (IOException e) {
            return 0;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            return socket.getLocalPort();
        }
    }

    private static Path resource(String name) throws Exception {
        return Path.of(RegistryTest.class.getClassLoader().getResource(name).toURI());
    }

    // ---- the store -----------------------------------------------------------------------

    private static String ls(Path store) {
        return Shell.vimgfs(store, "ls").ok().out().lines().map(l -> String.join(" ", l.trim().split("\\s+")))
                .reduce("", (a, b) -> a + b + "\n");
    }

    private static void refused(Path store, String expected, String... args) {
        Shell.Result result = Shell.vimgfs(store, args);
        assertEquals(1, result.exit(), "expected exit 1 from " + List.of(args) + ": " + result.out() + result.err());
        assertTrue(result.err().contains(expected), "expected '" + expected + "' in: " + result.err());
        assertEquals(1, result.err().strip().lines().count(), "one line: " + result.err());
    }

    private static int blobCount(Path store) throws IOException {
        try (var blobs = Files.list(store.resolve("blobs/sha256"))) {
            return (int) blobs.count();
        }
    }

    private static String rawManifest(String registry, String reference) {
        return Shell.run("skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "alice:s3cret",
                "docker://" + registry + "/" + reference).ok().out();
    }

    /**
     * A pushed vimgfs manifest is the stored one with a second layer, the chunk index, whose digest
     * the disk layer's annotation names and whose size follows from the disk's; returns its hex.
     */
    private static String assertChunkIndexed(String stored, String pushed) throws IOException {
        JsonNode before = JSON.readTree(stored);
        JsonNode after = JSON.readTree(pushed);
        assertEquals(before.path("config"), after.path("config"));
        assertEquals(2, after.path("layers").size(), pushed);
        JsonNode disk = after.path("layers").get(0);
        JsonNode index = after.path("layers").get(1);
        assertEquals(before.path("layers").get(0).path("digest"), disk.path("digest"));
        assertEquals("application/vnd.vimgfs.chunks.v1", index.path("mediaType").asText());
        assertEquals(index.path("digest").asText(), disk.path("annotations").path("io.vimgfs.chunks").asText());
        long chunks = (disk.path("size").asLong() + (1 << 20) - 1) >> 20;
        assertEquals(28 + chunks * 32 + (chunks + 7) / 8, index.path("size").asLong(), "one digest per MiB and a zero map");
        return index.path("digest").asText().substring("sha256:".length());
    }

    /** The chunk index blob starts with its header, then the SHA-256 of the disk's first MiB. */
    private static void assertChunkIndexOf(Path disk, Path blob) throws Exception {
        byte[] index = Files.readAllBytes(blob);
        byte[] first = java.util.Arrays.copyOf(Files.readAllBytes(disk), (int) Math.min(1 << 20, Files.size(disk)));
        assertEquals("VIMGCHK1", new String(index, 0, 8, java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(first)),
                java.util.HexFormat.of().formatHex(index, 28, 60));
    }

    private static String manifestDigest(Path store, String name) throws IOException {
        for (JsonNode descriptor : JSON.readTree(store.resolve("index.json").toFile()).path("manifests")) {
            if (name.equals(descriptor.path("annotations").path("org.opencontainers.image.ref.name").asText())) {
                return descriptor.path("digest").asText().substring("sha256:".length());
            }
        }
        throw new AssertionError(name + " is not in " + store);
    }
}
