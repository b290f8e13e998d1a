package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The README as a user reads it, for tests that check what it quotes against what the tools
 * print. A quote may stand for the variable parts of a message with the README's placeholders:
 * {@code <hex>} a digest, {@code 4242} or {@code PID} a pid, {@code HOST} a registry, {@code …}
 * anything; line breaks and runs of spaces in the README count as one space.
 */
final class Readme {
    private static final Path FILE = Path.of("..", "README.md");
    private static final Pattern PLACEHOLDER = Pattern.compile("<hex>|…|\\b4242\\b|\\bPID\\b|\\bHOST\\b");

    private Readme() {
    }

    /** Asserts that the README says {@code quote} and that {@code printed} (what a tool wrote) matches it. */
    static void assertQuotes(String quote, String printed) {
        assertQuotes(quote, quote, printed);
    }

    /** Asserts that the README says {@code context}, which quotes {@code message}, and that {@code printed} matches the message. */
    static void assertQuotes(String context, String message, String printed) {
        assertTrue(context.contains(message), "the context must hold the message");
        assertTrue(text().contains(flat(context)), "README.md does not say \"" + context + "\" (the tool printed: " + printed.strip() + ")");
        assertTrue(pattern(message).matcher(printed).find(),
                "README.md quotes \"" + message + "\", but the tool printed: " + printed.strip());
    }

    /**
     * Asserts that the README's table row that starts with {@code row} names {@code errno} (as
     * {@code `Invalid argument`}), and that {@code printed} ends with it, as cp and rm end their lines.
     */
    static void assertRowSays(String row, String errno, String printed) {
        String line = text().lines().filter(l -> l.startsWith("| " + row)).findFirst()
                .orElseThrow(() -> new AssertionError("README.md has no table row starting with \"| " + row + "\""));
        assertTrue(line.contains("`" + errno + "`"), "README.md says \"" + line + "\" but the tool printed: " + printed.strip());
        assertTrue(printed.strip().endsWith(": " + errno), "expected \"" + errno + "\", the tool printed: " + printed.strip());
    }

    private static String text() {
        try {
            return flat(Files.readString(FILE));
        } catch (IOException e) {
            throw new AssertionError("cannot read " + FILE.toAbsolutePath(), e);
        }
    }

    /** Keeps table rows apart (one per line) but joins wrapped prose into one line. */
    private static String flat(String text) {
        return text.replaceAll("[ \\t]*\\n(?![|\\n])[ \\t]*", " ").replaceAll("[ \\t]+", " ");
    }

    private static Pattern pattern(String quote) {
        StringBuilder regex = new StringBuilder();
        Matcher placeholder = PLACEHOLDER.matcher(flat(quote));
        int from = 0;
        while (placeholder.find()) {
            regex.append(Pattern.quote(flat(quote).substring(from, placeholder.start())));
            regex.append(switch (placeholder.group()) {
                case "<hex>" -> "[0-9a-f]{64}";
                case "…" -> ".*?";
                case "HOST" -> "\\S+";
                default -> "\\d+";
            });
            from = placeholder.end();
        }
        return Pattern.compile(regex.append(Pattern.quote(flat(quote).substring(from))).toString());
    }
}
