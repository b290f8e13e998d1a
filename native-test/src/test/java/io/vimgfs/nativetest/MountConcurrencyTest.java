package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several processes on one mount for a bounded time: writers cp-ing new images, one rm-ing names,
 * one running ls -lR. Afterwards the store is consistent and every name holds what was written.
 */
class MountConcurrencyTest {
    private static final Duration RUN_FOR = Duration.ofSeconds(15);
    /**
     * On a loaded 2-core machine 15 s may not be enough for the least work asserted below: the
     * run then goes on until it is done, up to this long.
     */
    private static final Duration RUN_AT_MOST = Duration.ofSeconds(120);
    private static final int WRITERS = 3;

    @TempDir
    Path dir;

    @Test
    void writersRemoverAndListerTogetherLeaveAConsistentStore() throws Exception {
        Map<String, String> written = new ConcurrentHashMap<>(); // name -> digest
        ConcurrentLinkedQueue<String> removable = new ConcurrentLinkedQueue<>();
        Set<String> removed = ConcurrentHashMap.newKeySet();
        List<String> listerErrors = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(WRITERS + 2);
        try (MountedStore m = MountedStore.mount(dir)) {
            long soonest = System.nanoTime() + RUN_FOR.toNanos();
            long latest = System.nanoTime() + RUN_AT_MOST.toNanos();
            AtomicInteger copied = new AtomicInteger();
            AtomicInteger removedCount = new AtomicInteger();
            AtomicInteger listed = new AtomicInteger();
            BooleanSupplier running = () -> {
                long now = System.nanoTime();
                boolean enough = copied.get() >= 30 && removedCount.get() >= 10 && listed.get() >= 5;
                return now < soonest || (now < latest && !enough);
            };
            List<Future<Integer>> writers = new ArrayList<>();
            for (int w = 0; w < WRITERS; w++) {
                int writer = w;
                writers.add(pool.submit(() -> {
                    int i = 0;
                    for (; running.getAsBoolean(); i++) {
                        Path source = Fixtures.small(dir, "w" + writer + "-" + i, 4096 + i, writer * 100_000L + i);
                        String name = "w" + writer + ":" + i;
                        Shell.run("cp", source.toString(), m.at("incoming/" + name)).ok();
                        written.put(name, Fixtures.sha256(source));
                        copied.incrementAndGet();
                        if (i % 2 == 0) {
                            removable.add(name);
                        }
                    }
                    return i;
                }));
            }
            Future<Integer> remover = pool.submit(() -> {
                int count = 0;
                while (running.getAsBoolean()) {
                    String name = removable.poll();
                    if (name == null) {
                        MountedStore.sleep(20);
                        continue;
                    }
                    Shell.run("rm", m.at("tags/" + name.replace(':', '/'))).ok();
                    removed.add(name);
                    removedCount.incrementAndGet();
                    count++;
                }
                return count;
            });
            Future<Integer> lister = pool.submit(() -> {
                int count = 0;
                for (; running.getAsBoolean(); count++) {
                    Shell.Result ls = Shell.run("ls", "-lR", m.mountpoint.toString());
                    ls.err().lines().filter(line -> !line.contains("No such file or directory")).forEach(listerErrors::add);
                    listed.incrementAndGet();
                }
                return count;
            });
            int copies = 0;
            for (Future<Integer> writer : writers) {
                copies += writer.get();
            }
            int removals = remover.get();
            int listings = lister.get();
            System.out.printf("%d copies, %d removals, %d listings in %s%n", copies, removals, listings, RUN_FOR);
            assertTrue(copies >= 30 && removals >= 10 && listings >= 5,
                    "the run did some work: " + copies + " copies, " + removals + " removals, " + listings + " listings");
            assertEquals(List.of(), listerErrors, "ls -lR saw only entries vanishing under it, nothing else");

            Map<String, String> expected = new TreeMap<>(written);
            expected.keySet().removeAll(removed);
            assertEquals(expected, namesInTheMount(m), "every name written and not removed points at what was written");
            List<String> images = m.ls("by-digest/sha256");
            assertEquals(new TreeSet<>(expected.values()), new TreeSet<>(images), "by-digest holds exactly the named images");
            List<String> command = new ArrayList<>(List.of("sha256sum"));
            images.forEach(hex -> command.add(m.at("by-digest/sha256/" + hex)));
            for (String line : Shell.run(Duration.ofSeconds(120), Map.of(), command).ok().out().split("\n")) {
                String[] hashAndFile = line.split(" +", 2);
                assertTrue(hashAndFile[1].endsWith("/" + hashAndFile[0]), "sha256sum of a by-digest file prints its name: " + line);
            }
            assertEquals(List.of(), m.ls("incoming"));
            assertEquals(List.of(), m.stagingFiles());
            Shell.Result fsck = Shell.vimgfs(m.store, "fsck").ok();
            assertTrue(fsck.out().contains("clean"), fsck.out());
        } finally {
            pool.shutdownNow();
        }
    }

    /** name -> digest for every tags/w*\/* link, as readlink shows it. */
    private static Map<String, String> namesInTheMount(MountedStore m) {
        Map<String, String> names = new TreeMap<>();
        for (String repository : m.ls("tags")) {
            for (String tag : m.ls("tags/" + repository)) {
                String target = Shell.run("readlink", m.at("tags/" + repository + "/" + tag)).ok().out().strip();
                names.put(repository + ":" + tag, target.substring(target.lastIndexOf('/') + 1));
            }
        }
        return names;
    }
}
