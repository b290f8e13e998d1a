package io.vimgfs.store.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ChallengeTest {

    @Test
    void dockerHubBearerChallengeWithScope() {
        List<Challenge> parsed = Challenge.parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                + "scope=\"repository:library/fedora:pull,push\"");
        assertEquals(1, parsed.size());
        assertTrue(parsed.get(0).isBearer());
        assertEquals(Map.of("realm", "https://auth.docker.io/token", "service", "registry.docker.io",
                "scope", "repository:library/fedora:pull,push"), parsed.get(0).parameters());
    }

    @Test
    void basicChallengeAndSchemeCase() {
        List<Challenge> parsed = Challenge.parse("basic realm=\"Registry Realm\"");
        assertTrue(parsed.get(0).isBasic());
        assertEquals("Registry Realm", parsed.get(0).parameter("REALM").orElseThrow());
    }

    @Test
    void severalChallengesInOneHeaderUnquotedValuesAndSpaces() {
        List<Challenge> parsed = Challenge.parse("Basic realm=\"a, b\", Bearer realm = https://t.example/token , service=reg");
        assertEquals(2, parsed.size());
        assertEquals("a, b", parsed.get(0).parameter("realm").orElseThrow());
        assertEquals("bearer", parsed.get(1).scheme());
        assertEquals("https://t.example/token", parsed.get(1).parameter("realm").orElseThrow());
        assertEquals("reg", parsed.get(1).parameter("service").orElseThrow());
    }

    @Test
    void escapedQuotesAndTruncatedOrJunkHeadersNeverThrow() {
        assertEquals("say \"hi\"", Challenge.parse("Bearer realm=\"say \\\"hi\\\"\"").get(0).parameter("realm").orElseThrow());
        assertEquals("https://x", Challenge.parse("Bearer realm=\"https://x").get(0).parameter("realm").orElseThrow());
        assertEquals(List.of(), Challenge.parse(""));
        assertEquals(List.of(), Challenge.parse(" , ,"));
        Challenge.parse("=\"\"==,,\"");
        assertEquals("negotiate", Challenge.parse("Negotiate abc123==").get(0).scheme());
    }
}
