package io.vimgfs.cli;

import java.util.Locale;

/** Sizes the way qemu-img prints them: {@code 64 MiB}, {@code 1.5 GiB}. */
final class ByteSizes {
    private static final String[] UNITS = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

    private ByteSizes() {
    }

    static String format(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < UNITS.length - 1) {
            value /= 1024;
            unit++;
        }
        String number = String.format(Locale.ROOT, "%.3g", value);
        if (number.contains(".")) {
            number = number.replaceAll("0+$", "").replaceAll("\\.$", "");
        }
        return number + " " + UNITS[unit];
    }

    /** {@code 50G}, {@code 512M}, {@code 1.5T}, {@code 4096}: powers of 1024, as {@code df -h} prints them. */
    static long parse(String text) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9]+(?:\\.[0-9]+)?)([KMGTP]?)(?:i?B)?",
                java.util.regex.Pattern.CASE_INSENSITIVE).matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a size: give bytes or a number with K, M, G, T or P (50G)");
        }
        int power = m.group(2).isEmpty() ? 0 : "KMGTP".indexOf(m.group(2).toUpperCase(java.util.Locale.ROOT)) + 1;
        return (long) (Double.parseDouble(m.group(1)) * Math.pow(1024, power));
    }
}
