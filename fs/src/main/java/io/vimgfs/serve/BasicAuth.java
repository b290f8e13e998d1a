package io.vimgfs.serve;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.security.crypto.bcrypt.BCrypt;

/**
 * HTTP Basic auth against an htpasswd file of bcrypt entries ({@code htpasswd -B}), as
 * docker-registry reads it. bcrypt is slow on purpose, so a header that passed is remembered for
 * a few minutes (by its SHA-256, never the password) and a client sending one per request pays once.
 */
final class BasicAuth {
    private final Map<String, String> hashes;
    private final Cache<String, String> passed = Caffeine.newBuilder()
            .maximumSize(1_000).expireAfterWrite(Duration.ofMinutes(5)).build();

    private BasicAuth(Map<String, String> hashes) {
        this.hashes = hashes;
    }

    static BasicAuth read(Path htpasswd) throws IOException {
        Map<String, String> hashes = new HashMap<>();
        List<String> lines = Files.readAllLines(htpasswd, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            int colon = line.indexOf(':');
            String hash = colon < 0 ? "" : line.substring(colon + 1);
            if (colon <= 0 || !hash.matches("\\$2[aby]\\$\\d\\d\\$.{53}")) {
                throw new IOException(htpasswd + ":" + (i + 1) + ": not a bcrypt entry USER:$2y$… (write it with htpasswd -B)");
            }
            hashes.put(line.substring(0, colon), hash);
        }
        if (hashes.isEmpty()) {
            throw new IOException(htpasswd + ": no users");
        }
        return new BasicAuth(hashes);
    }

    /** The user an {@code Authorization} header proves, if any. */
    Optional<String> user(Optional<String> authorization) {
        if (authorization.isEmpty() || !authorization.get().regionMatches(true, 0, "Basic ", 0, 6)) {
            return Optional.empty();
        }
        String key = Pushes.sha256(authorization.get().getBytes(StandardCharsets.UTF_8));
        String known = passed.getIfPresent(key);
        if (known != null) {
            return Optional.of(known);
        }
        String decoded;
        try {
            decoded = new String(Base64.getDecoder().decode(authorization.get().substring(6).strip()), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
        int colon = decoded.indexOf(':');
        if (colon < 0) {
            return Optional.empty();
        }
        String user = decoded.substring(0, colon);
        String hash = hashes.get(user);
        if (hash == null || !BCrypt.checkpw(decoded.substring(colon + 1), hash)) {
            return Optional.empty();
        }
        passed.put(key, user);
        return Optional.of(user);
    }
}
