package io.vimgfs.store.registry;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** A user name and password (or token) for one registry. */
public record Credentials(String user, String password) {

    /** Parses {@code USER[:PASS]} as {@code --creds} takes it. */
    public static Credentials parse(String userColonPassword) {
        int colon = userColonPassword.indexOf(':');
        return colon < 0 ? new Credentials(userColonPassword, "")
                : new Credentials(userColonPassword.substring(0, colon), userColonPassword.substring(colon + 1));
    }

    /** The value of an {@code Authorization: Basic} header. */
    String basicHeader() {
        return "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public String toString() {
        return "Credentials[user=" + user + ", password=<hidden>]"; // never print a secret into a log
    }
}
