package io.vimgfs.store;

import java.util.Optional;

/** A name that may pin its content: {@code cirros:0.6.2@sha256:<hex>} (SPEC §3, §4). */
public record Reference(ImageName name, Optional<Digest> pin) {

    /** Parses a reference whose name is to be given (see {@link ImageName#parse}). */
    public static Reference parse(String text) throws InvalidNameException {
        return parse(text, true);
    }

    /** Parses a reference to what the store may already hold (see {@link ImageName#parseExisting}). */
    static Reference parseExisting(String text) throws InvalidNameException {
        return parse(text, false);
    }

    private static Reference parse(String text, boolean given) throws InvalidNameException {
        int at = text.indexOf('@');
        if (at < 0) {
            return new Reference(ImageName.parseName(text, text, given), Optional.empty());
        }
        ImageName name = ImageName.parseName(text, text.substring(0, at), given);
        String digest = text.substring(at + 1);
        try {
            return new Reference(name, Optional.of(Digest.parse(digest)));
        } catch (InvalidNameException e) {
            throw new InvalidNameException(text, e.rule());
        }
    }

    @Override
    public String toString() {
        return pin.map(d -> name + "@" + d).orElse(name.toString());
    }
}
