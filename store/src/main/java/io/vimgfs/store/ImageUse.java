package io.vimgfs.store;

/**
 * One process holding one stored image open, as {@code /proc/PID/fd} shows it: the path it
 * opened (the blob, or an entry of a mount that serves the bytes), and whether the blob was
 * deleted since (the process still reads it; the store no longer has it).
 */
public record ImageUse(Digest digest, long pid, String command, String path, boolean deleted) {
}
