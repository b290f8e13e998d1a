package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Polls a condition until it holds or a deadline passes: no blind sleeps in the mount tests. */
final class Eventually {
    private Eventually() {
    }

    /** Waits until {@code condition} holds; fails naming {@code what} after {@code limit}. Returns the wait. */
    static Duration within(Duration limit, String what, BooleanSupplier condition) {
        long start = System.nanoTime();
        long deadline = start + limit.toNanos();
        while (true) {
            if (condition.getAsBoolean()) {
                return Duration.ofNanos(System.nanoTime() - start);
            }
            if (System.nanoTime() > deadline) {
                fail(what + ": still not true after " + limit.toMillis() + " ms");
            }
            MountedStore.sleep(50);
        }
    }
}
