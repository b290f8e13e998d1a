package io.vimgfs.store.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What one registry asked for (its last {@code WWW-Authenticate} challenge), the credentials found
 * for it, and the Bearer tokens it issued, cached per scope until shortly before they expire.
 */
final class Authorizer {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Distribution's default when a token server does not say (docker's token spec). */
    private static final Duration DEFAULT_TOKEN_LIFETIME = Duration.ofSeconds(60);
    private static final Duration EXPIRY_MARGIN = Duration.ofSeconds(5);

    private final String registry;
    private final CredentialLookup lookup;
    private final Clock clock;
    private final Map<String, Optional<Credentials>> credentialsByRepository = new ConcurrentHashMap<>();
    private final Map<String, Token> tokens = new ConcurrentHashMap<>();
    private volatile Challenge challenge;

    private record Token(String value, Instant expires) {
    }

    /** The access a request needs: {@code repository:NAME:ACTIONS}, plus pull on a mount's source. */
    record Scope(String repository, String actions, Optional<String> mountedFrom) {
        static Scope pull(String repository) {
            return new Scope(repository, "pull", Optional.empty());
        }

        static Scope push(String repository) {
            return new Scope(repository, "pull,push", Optional.empty());
        }

        List<String> strings() {
            String own = "repository:" + repository + ":" + actions;
            return mountedFrom.map(from -> List.of(own, "repository:" + from + ":pull")).orElse(List.of(own));
        }

        String key() {
            return String.join(" ", strings());
        }
    }

    Authorizer(String registry, CredentialLookup lookup, Clock clock) {
        this.registry = registry;
        this.lookup = lookup;
        this.clock = clock;
    }

    /** The Authorization header for a request needing {@code scope}, once the registry has challenged. */
    Optional<String> header(HttpClient http, Scope scope, String reference) throws IOException {
        Challenge current = challenge;
        if (current == null) {
            return Optional.empty();
        }
        if (current.isBasic()) {
            return credentials(scope.repository()).map(Credentials::basicHeader);
        }
        if (current.isBearer()) {
            Token token = tokens.get(scope.key());
            if (token == null || !clock.instant().plus(EXPIRY_MARGIN).isBefore(token.expires())) {
                token = fetchToken(http, current, scope, reference);
                tokens.put(scope.key(), token);
            }
            return Optional.of("Bearer " + token.value());
        }
        throw new RegistryException(RegistryException.Kind.PROTOCOL, reference + ": the registry asks for '"
                + current.scheme() + "' authentication, which vimgfs does not speak (only Basic and Bearer)");
    }

    /** Records a 401's challenge; a token it refused is dropped so the next try fetches a fresh one. */
    void challenged(List<String> headers, Scope scope) {
        List<Challenge> offered = Challenge.parseAll(headers);
        challenge = offered.stream().filter(Challenge::isBearer).findFirst()
                .or(() -> offered.stream().filter(Challenge::isBasic).findFirst())
                .or(() -> offered.stream().findFirst())
                .orElse(challenge);
        tokens.remove(scope.key());
    }

    boolean hasChallenge() {
        return challenge != null;
    }

    Optional<Credentials> credentials(String repository) throws IOException {
        Optional<Credentials> known = credentialsByRepository.get(repository);
        if (known == null) {
            known = lookup.find(registry, repository);
            credentialsByRepository.put(repository, known);
        }
        return known;
    }

    /** What to tell a user whose request was refused with 401 after we answered the challenge. */
    String refusal(String reference, Scope scope) throws IOException {
        if (credentials(scope.repository()).isEmpty()) {
            return reference + ": authentication required: log in with 'podman login " + registry
                    + "' or pass --creds USER:PASS or --authfile FILE";
        }
        return reference + ": " + registry + " refused the credentials (user '"
                + credentials(scope.repository()).get().user() + "'); check them, or pass --creds USER:PASS";
    }

    private Token fetchToken(HttpClient http, Challenge bearer, Scope scope, String reference) throws IOException {
        String realm = bearer.parameter("realm").orElseThrow(() -> new RegistryException(RegistryException.Kind.PROTOCOL,
                reference + ": the registry's Bearer challenge names no realm (token server)"));
        StringBuilder query = new StringBuilder();
        bearer.parameter("service").ifPresent(s -> query.append("service=").append(encode(s)));
        for (String s : scope.strings()) {
            query.append(query.length() == 0 ? "" : "&").append("scope=").append(encode(s));
        }
        URI uri = URI.create(realm + (realm.contains("?") ? "&" : "?") + query);
        HttpRequest.Builder request = HttpRequest.newBuilder(uri).GET().timeout(Duration.ofSeconds(60))
                .header("Accept", "application/json");
        Optional<Credentials> credentials = credentials(scope.repository());
        credentials.ifPresent(c -> request.header("Authorization", c.basicHeader()));
        HttpResponse<byte[]> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while asking " + uri.getHost() + " for a token", e);
        } catch (IOException e) {
            throw new RegistryException(RegistryException.Kind.NETWORK, reference + ": cannot reach the token server "
                    + uri.getScheme() + "://" + uri.getAuthority() + ": " + RegistryClient.describe(e), e);
        }
        if (response.statusCode() == 401 || response.statusCode() == 403) {
            throw new RegistryException(RegistryException.Kind.AUTHENTICATION_REQUIRED, refusal(reference, scope));
        }
        if (response.statusCode() != 200) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, reference + ": the token server "
                    + uri.getAuthority() + " answered HTTP " + response.statusCode());
        }
        JsonNode body = JSON.readTree(response.body());
        String token = body.path("token").asText(body.path("access_token").asText(""));
        if (token.isEmpty()) {
            throw new RegistryException(RegistryException.Kind.PROTOCOL, reference + ": the token server "
                    + uri.getAuthority() + " answered without a token");
        }
        long lifetime = body.path("expires_in").asLong(DEFAULT_TOKEN_LIFETIME.toSeconds());
        return new Token(token, clock.instant().plusSeconds(Math.max(lifetime, 1)));
    }

    private static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }
}
