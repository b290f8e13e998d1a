package io.vimgfs.store;

import java.util.Optional;

/** A name that may pin its content: {@code cirros:0.6.2@sha256:<hex>} (SPEC §3, §4). */
public record Reference(ImageName name, Optional<Digest> pin) {

    public static Reference parse(String text) throws InvalidNameException {
        int at = text.indexOf('@');
        if (at < 0) {
            return new Reference(ImageName.parseName(text, text), Optional.empty());
        }
        ImageName name = ImageName.parseName(text, text.substring(0, at));
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
