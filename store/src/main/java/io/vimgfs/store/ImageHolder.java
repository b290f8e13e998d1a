package io.vimgfs.store;

/** A process that has a stored image's blob open, as {@code /proc} shows it. */
public record ImageHolder(long pid, String command) {
    @Override
    public String toString() {
        return "pid " + pid + " (" + command + ")";
    }
}
