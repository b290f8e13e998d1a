package io.vimgfs.store;

/** A name or digest that breaks the reference grammar; the message names the rule that failed. */
public final class InvalidNameException extends StoreException {
    private final String input;
    private final String rule;

    public InvalidNameException(String input, String rule) {
        super("invalid name '" + printable(input) + "': " + rule);
        this.input = input;
        this.rule = rule;
    }

    public String input() {
        return input;
    }

    /** The rule of the grammar that the input broke. */
    public String rule() {
        return rule;
    }

    /** Control characters are shown escaped so a hostile name cannot forge log lines. */
    public static String printable(String s) {
        StringBuilder out = new StringBuilder();
        int shown = 0;
        for (int i = 0; i < s.length() && shown < 200; i++, shown++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                out.append(String.format("\\x%02x", (int) c));
            } else {
                out.append(c);
            }
        }
        if (s.length() > 200) {
            out.append("…(").append(s.length()).append(" chars)");
        }
        return out.toString();
    }
}
