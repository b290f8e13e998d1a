package io.vimgfs.store.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Finds the credentials for a registry the way podman (containers/image) does: {@code --creds};
 * then {@code --authfile}, else {@code $REGISTRY_AUTH_FILE}, else
 * {@code $XDG_RUNTIME_DIR/containers/auth.json}; then {@code $XDG_CONFIG_HOME/containers/auth.json}
 * (unless an auth file was given); then {@code ~/.docker/config.json}. In each file a
 * {@code credHelpers} entry for the registry wins, then the most specific {@code auths} key
 * ({@code host/ns/repo} before {@code host}), then a {@code credsStore} helper.
 */
public final class CredentialLookup {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long HELPER_TIMEOUT_SECONDS = 30;

    private final Optional<Credentials> explicit;
    private final Optional<Path> authFile;
    private final Map<String, String> environment;
    private final Path home;

    public CredentialLookup(Optional<Credentials> explicit, Optional<Path> authFile, Map<String, String> environment,
            Path home) {
        this.explicit = explicit;
        this.authFile = authFile;
        this.environment = Map.copyOf(environment);
        this.home = home;
    }

    /** The lookup for this process: its environment and home directory. */
    public static CredentialLookup forProcess(Optional<Credentials> explicit, Optional<Path> authFile) {
        return new CredentialLookup(explicit, authFile, System.getenv(), Path.of(System.getProperty("user.home")));
    }

    /** The auth files consulted, in order (absent ones are skipped when read). */
    List<Path> authFiles() {
        List<Path> files = new ArrayList<>();
        boolean userSpecified = authFile.isPresent() || present("REGISTRY_AUTH_FILE");
        if (authFile.isPresent()) {
            files.add(authFile.get());
        } else if (present("REGISTRY_AUTH_FILE")) {
            files.add(Path.of(environment.get("REGISTRY_AUTH_FILE")));
        } else if (present("XDG_RUNTIME_DIR")) {
            files.add(Path.of(environment.get("XDG_RUNTIME_DIR"), "containers", "auth.json"));
        }
        if (!userSpecified) {
            Path config = present("XDG_CONFIG_HOME") ? Path.of(environment.get("XDG_CONFIG_HOME")) : home.resolve(".config");
            files.add(config.resolve("containers").resolve("auth.json"));
        }
        files.add(home.resolve(".docker").resolve("config.json"));
        return files;
    }

    private boolean present(String variable) {
        String value = environment.get(variable);
        return value != null && !value.isEmpty();
    }

    /** The credentials for {@code registry} (host[:port]) and {@code repository}, if any source has some. */
    public Optional<Credentials> find(String registry, String repository) throws IOException {
        if (explicit.isPresent()) {
            return explicit;
        }
        for (Path file : authFiles()) {
            if (!Files.isRegularFile(file)) {
                if (authFile.isPresent() && file.equals(authFile.get())) {
                    throw new RegistryException(RegistryException.Kind.AUTHENTICATION_REQUIRED,
                            "auth file " + file + " does not exist; log in with 'podman login --authfile " + file + "'");
                }
                continue;
            }
            Optional<Credentials> found = fromFile(file, registry, repository);
            if (found.isPresent()) {
                return found;
            }
        }
        return Optional.empty();
    }

    private Optional<Credentials> fromFile(Path file, String registry, String repository) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new IOException("auth file " + file + " is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            return Optional.empty();
        }
        JsonNode helper = root.path("credHelpers").path(registry);
        if (helper.isTextual()) {
            return runHelper(helper.asText(), registry);
        }
        Optional<Credentials> fromAuths = fromAuths(root.path("auths"), registry, repository, file);
        if (fromAuths.isPresent()) {
            return fromAuths;
        }
        if (root.path("credsStore").isTextual() && !root.path("credsStore").asText().isEmpty()) {
            return runHelper(root.path("credsStore").asText(), registry);
        }
        return Optional.empty();
    }

    /** The entry whose key is the longest prefix of {@code registry/repository} on a '/' boundary. */
    private static Optional<Credentials> fromAuths(JsonNode auths, String registry, String repository, Path file)
            throws IOException {
        String wanted = registry + "/" + repository;
        String bestKey = null;
        JsonNode best = null;
        for (Iterator<Map.Entry<String, JsonNode>> it = auths.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            String key = normaliseKey(entry.getKey());
            boolean matches = key.equals(registry) || wanted.equals(key) || wanted.startsWith(key + "/");
            if (matches && (bestKey == null || key.length() > bestKey.length())) {
                bestKey = key;
                best = entry.getValue();
            }
        }
        if (best == null) {
            return Optional.empty();
        }
        String auth = best.path("auth").asText("");
        if (!auth.isEmpty()) {
            String decoded;
            try {
                decoded = new String(Base64.getDecoder().decode(auth.trim()), StandardCharsets.UTF_8);
            } catch (IllegalArgumentException e) {
                throw new IOException("auth file " + file + ": the entry for " + bestKey + " is not base64 user:password");
            }
            if (!decoded.contains(":")) {
                throw new IOException("auth file " + file + ": the entry for " + bestKey + " is not base64 user:password");
            }
            return Optional.of(Credentials.parse(decoded));
        }
        if (best.has("username")) {
            return Optional.of(new Credentials(best.path("username").asText(), best.path("password").asText("")));
        }
        return Optional.empty();
    }

    /** Docker writes keys as URLs ({@code https://index.docker.io/v1/}); podman as {@code host[/repo]}. */
    static String normaliseKey(String key) {
        String k = key;
        int scheme = k.indexOf("://");
        if (scheme >= 0) {
            k = k.substring(scheme + 3);
        }
        for (String suffix : List.of("/v1/", "/v2/", "/v1", "/v2", "/")) {
            if (k.endsWith(suffix)) {
                k = k.substring(0, k.length() - suffix.length());
                break;
            }
        }
        if (k.equals("index.docker.io") || k.equals("registry-1.docker.io")) {
            return RegistryReference.DOCKER_HUB;
        }
        if (k.startsWith("index.docker.io/")) {
            return RegistryReference.DOCKER_HUB + k.substring("index.docker.io".length());
        }
        return k;
    }

    /** Asks {@code docker-credential-NAME get} (found on $PATH) for the registry's credentials. */
    private Optional<Credentials> runHelper(String name, String registry) throws IOException {
        String program = "docker-credential-" + name;
        Path executable = findOnPath(program).orElseThrow(() -> new RegistryException(
                RegistryException.Kind.AUTHENTICATION_REQUIRED,
                "credential helper " + program + " (named for " + registry + ") is not on $PATH; install it or "
                        + "pass --creds USER:PASS"));
        ProcessBuilder builder = new ProcessBuilder(executable.toString(), "get");
        builder.environment().clear();
        builder.environment().putAll(environment);
        builder.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process process = builder.start();
        try {
            process.getOutputStream().write(registry.getBytes(StandardCharsets.UTF_8));
            process.getOutputStream().close();
            byte[] out = process.getInputStream().readNBytes(1 << 20);
            if (!process.waitFor(HELPER_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IOException(program + " did not answer within " + HELPER_TIMEOUT_SECONDS + " s");
            }
            if (process.exitValue() != 0) {
                return Optional.empty(); // "credentials not found in native keychain"
            }
            JsonNode answer = JSON.readTree(out);
            String user = answer.path("Username").asText("");
            String secret = answer.path("Secret").asText("");
            if (secret.isEmpty()) {
                return Optional.empty();
            }
            // Docker's convention: user "<token>" means the secret is an identity token, used as a password here.
            return Optional.of(new Credentials(user, secret));
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + program, e);
        }
    }

    private Optional<Path> findOnPath(String program) {
        String path = environment.getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, program);
            if (Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }
}
