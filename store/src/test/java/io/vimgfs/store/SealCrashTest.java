package io.vimgfs.store;

import static io.vimgfs.store.StoreFiles.MIB;
import static io.vimgfs.store.StoreFiles.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The mount's sealing pass over an older store's blobs across crashes: {@code .vimgfs/sealed}
 * is never written before every blob is sealed, so a pass a crash cut short (some blobs sealed,
 * the marker stale) is finished by the next mount, and the store is then sealed and fsck clean.
 */
class SealCrashTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = CrashPoint.class, mode = EnumSource.Mode.MATCH_ALL, names = "SEALING.*")
    void aSealingPassCutShortIsFinishedByTheNextMount(CrashPoint point) throws Exception {
        Path root = olderStore(0);
        String staleMarker = marker(root);
        int blobs = blobs(root).size();

        CrashingImporter.Result child = CrashingImporter.run("crash", root.toString(), point.name(), "seal");

        assertEquals(CrashingImporter.HALT_STATUS, child.status(), () -> "the child should halt at " + point + ":\n" + child.output());
        assertEquals(staleMarker, marker(root), "the marker is not written before the pass is done");
        assertEquals(point == CrashPoint.SEALING ? 1 : blobs, sealed(root), "blobs sealed when the pass stopped");
        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(point == CrashPoint.SEALING ? blobs - 1 : 0, store.sealBlobs(), "the next mount seals the rest");
        }
        assertEverythingSealed(root);
        assertNotEquals(staleMarker, marker(root), "the finished pass wrote the marker");
        StoreFiles.assertConsistent(root);
        assertTheNextMountSkipsThePass(root);
    }

    /**
     * Another tool (skopeo copying into the layout) adds a blob after the pass has looked at
     * every blob and before it writes the marker: the marker must not cover that blob. It did
     * (it recorded blobs/ as it was after the pass), so no mount ever sealed the new blob.
     */
    @Test
    void aBlobAddedWhileThePassRunsIsSealedByTheNextMount() throws Exception {
        Path root = olderStore(0);
        byte[] foreign = StoreFiles.bytes("copied in meanwhile", 1000);
        Path added = StoreFiles.blob(root, StoreFiles.sha256(foreign));
        StoreOptions addsABlob = StoreOptions.defaults().withCrashHook(point -> {
            if (point == CrashPoint.SEALING_DONE) {
                try {
                    Files.write(added, foreign);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
        });
        try (ImageStore store = ImageStore.open(root, addsABlob)) {
            store.sealBlobs();
        }
        assertEquals(ImmutableFlag.State.CLEAR, new ImmutableFlag(root).get(added), "(the pass had passed it)");

        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(1, store.sealBlobs(), "the next mount looks again and seals the added blob");
        }
        assertEverythingSealed(root);
        StoreFiles.assertConsistent(root);
    }

    /**
     * SIGKILL of a mount's sealing pass over a store of many unsealed blobs, at moments spread
     * over the pass (counted from when its first blob, in directory order, is sealed): the next
     * mount seals exactly what the killed pass left; fsck is then clean.
     */
    @Test
    void aSealingPassKilledAtAnyMomentIsFinishedByTheNextMount() throws Exception {
        Path root = olderStore(2000);
        int blobs = blobs(root).size();
        long passMillis = timeOnePass(root, blobs);
        int cutShort = 0;
        for (int i = 0; i < 6; i++) {
            unseal(root);
            long delay = passMillis * i / 6;
            Process child = CrashingImporter.command(true, "seal", root.toString()).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("ready", out.readLine());
            awaitFirstSealed(root, child);
            boolean finished = child.waitFor(delay, TimeUnit.MILLISECONDS);
            child.destroyForcibly();
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            out.close();

            long sealedNow = sealed(root);
            System.out.printf("kill %d after %d of %d ms: %d of %d blobs sealed%s%n", i, delay, passMillis, sealedNow, blobs,
                    finished ? " (finished first)" : "");
            if (sealedNow > 0 && sealedNow < blobs) {
                cutShort++;
            }
            try (ImageStore store = ImageStore.open(root)) {
                assertEquals(blobs - sealedNow, store.sealBlobs(), "the next mount seals exactly what the killed pass left");
            }
            assertEverythingSealed(root);
        }
        assertTrue(cutShort > 0, "no kill landed inside the pass");
        StoreFiles.assertConsistent(root);
    }

    /** Waits until the pass has sealed the first blob it meets (it reads blobs/ in directory order, as Files.list does). */
    private static void awaitFirstSealed(Path root, Process pass) throws IOException, InterruptedException {
        Path first;
        try (Stream<Path> files = Files.list(root.resolve("blobs/sha256"))) {
            first = files.findFirst().orElseThrow();
        }
        ImmutableFlag flag = new ImmutableFlag(root);
        while (flag.get(first) != ImmutableFlag.State.SET && pass.isAlive()) {
            Thread.sleep(1);
        }
    }

    /** Runs one whole pass in a fresh JVM over the unsealed store; returns how long it ran after sealing its first blob. */
    private static long timeOnePass(Path root, int blobs) throws IOException, InterruptedException {
        unseal(root);
        Process child = CrashingImporter.command(true, "seal", root.toString()).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        assertEquals("ready", out.readLine());
        awaitFirstSealed(root, child);
        long start = System.nanoTime();
        assertEquals("sealed " + blobs, String.join(" ", List.of(out.readLine().split(" ")).subList(0, 2)));
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertEquals(0, child.waitFor());
        out.close();
        return Math.max(5, millis);
    }

    /**
     * A store as an older vimgfs left it: two images whose blobs lack the immutable flag, mode
     * 0444 and (layers) the {@code user.vimgfs.*} xattrs, {@code extra} unreferenced blobs, and a
     * {@code .vimgfs/sealed} from before they changed.
     */
    private Path olderStore(int extra) throws IOException {
        Path root = dir.resolve("store");
        try (ImageStore store = ImageStore.open(root)) {
            for (String name : List.of("a", "b")) {
                ImageInfo image = store.importFile(Files.write(dir.resolve(name + ".img"), StoreFiles.bytes(name, MIB)),
                        Reference.parse(name + ":1"), n -> { });
                Path layer = StoreFiles.blob(root, image.digest().hex());
                StoreFiles.unprotect(layer);
                assertEquals(0, run("setfattr", "-x", "user.vimgfs.digest", layer.toString()).status());
            }
            store.syncIndex();
        }
        for (int i = 0; i <= extra; i++) {
            byte[] content = StoreFiles.bytes("foreign " + i, 100);
            Files.write(StoreFiles.blob(root, StoreFiles.sha256(content)), content);
        }
        unseal(root);
        return root;
    }

    /** Clears every blob's immutable flag and mode 0444, and makes the marker stale, as before sealing existed. */
    private static void unseal(Path root) throws IOException {
        StoreFiles.Run chattr = run("chattr", "-R", "-i", root.resolve("blobs/sha256").toString());
        assertEquals(0, chattr.status(), chattr.output());
        for (Path blob : blobs(root)) {
            Files.setPosixFilePermissions(blob, PosixFilePermissions.fromString("rw-r--r--"));
        }
        Files.writeString(root.resolve(".vimgfs/sealed"), "stamp of an older blobs/\n");
    }

    private static void assertEverythingSealed(Path root) throws IOException {
        for (Path blob : blobs(root)) {
            assertEquals(ImmutableFlag.State.SET, new ImmutableFlag(root).get(blob), blob::toString);
            assertEquals("r--r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(blob)), blob::toString);
        }
        try (ImageStore store = ImageStore.open(root)) {
            for (ImageInfo image : store.list()) {
                assertEquals(image.digest().toString(), ImmutableBlobTest.getfattr("user.vimgfs.digest",
                        StoreFiles.blob(root, image.digest().hex())), "the layer has its xattrs again");
            }
        }
    }

    /** A blob made unsealed behind the store's back, without touching blobs/, is not looked at: the marker matches. */
    private static void assertTheNextMountSkipsThePass(Path root) throws IOException {
        Path blob = blobs(root).get(0);
        StoreFiles.unprotect(blob);
        try (ImageStore store = ImageStore.open(root)) {
            assertEquals(0, store.sealBlobs(), "the marker the finished pass wrote lets the next mount skip it");
        }
    }

    private static long sealed(Path root) throws IOException {
        ImmutableFlag flag = new ImmutableFlag(root);
        long sealed = 0;
        for (Path blob : blobs(root)) {
            if (flag.get(blob) == ImmutableFlag.State.SET) {
                sealed++;
            }
        }
        return sealed;
    }

    private static List<Path> blobs(Path root) throws IOException {
        try (Stream<Path> files = Files.list(root.resolve("blobs/sha256"))) {
            return files.sorted().toList();
        }
    }

    private static String marker(Path root) throws IOException {
        return Files.readString(root.resolve(".vimgfs/sealed"));
    }
}
