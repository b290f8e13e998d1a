package io.vimgfs.store;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as people write them for {@code --unused-for}: {@code 30d}, {@code 12h}, {@code 90m}, {@code 45s}. */
public final class Durations {
    private static final Pattern FORM = Pattern.compile("([0-9]{1,9})([smhdw])");

    private Durations() {
    }

    public static Duration parse(String text) {
        Matcher m = FORM.matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a duration: give a number and s, m, h, d or w (30d)");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            case "d" -> Duration.ofDays(n);
            default -> Duration.ofDays(7 * n);
        };
    }

    /** The largest whole unit: {@code 31d}, {@code 5h}, {@code 12m}, {@code 3s}. */
    public static String format(Duration duration) {
        long s = duration.getSeconds();
        if (s >= 86_400) {
            return s / 86_400 + "d";
        }
        if (s >= 3600) {
            return s / 3600 + "h";
        }
        return s >= 60 ? s / 60 + "m" : s + "s";
    }
}
