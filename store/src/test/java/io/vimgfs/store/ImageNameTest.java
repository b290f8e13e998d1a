package io.vimgfs.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.List;
import java.util.Optional;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The name grammar of SPEC §3, as users type names into {@code incoming/} and the CLI. */
class ImageNameTest {
    private static final String HEX = "0123456789abcdef".repeat(4);

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
        "cirros                       | cirros                 | latest",
        "cirros:0.6.2                 | cirros                 | 0.6.2",
        "example.com/os/fedora:40     | example.com/os/fedora  | 40",
        "localhost:5000/a/b:c         | localhost:5000/a/b     | c",
        "localhost:5000/a/b           | localhost:5000/a/b     | latest",
        "a__b                         | a__b                   | latest",
        "a--b                         | a--b                   | latest",
        "a_b.c/d                      | a_b.c/d                | latest",
    })
    void acceptsNamesOfTheGrammar(String text, String repository, String tag) throws Exception {
        ImageName name = ImageName.parse(text);
        assertEquals(repository, name.repository());
        assertEquals(tag, name.tag());
    }

    @Test
    void acceptsATagOf128Characters() throws Exception {
        String tag = "T" + "a".repeat(127);
        assertEquals(tag, ImageName.parse("cirros:" + tag).tag());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
        "Cirros:1          | lowercase",
        "os/Fedora         | lowercase",
        "a/../b            | '..'",
        "..                | '..'",
        "a//b              | repeated '/'",
        "a/                | trailing",
        "/a                | leading",
        "cirros:.hidden    | does not start with '.' or '-'",
        "cirros:-dash      | does not start with '.' or '-'",
        "cirros:           | a tag is 1 to 128",
        "a b               | lowercase",
    })
    void rejectsWithTheRuleThatFailed(String text, String rule) {
        InvalidNameException e = assertThrows(InvalidNameException.class, () -> ImageName.parse(text));
        assertTrue(e.getMessage().contains(rule), () -> "message '" + e.getMessage() + "' should name the rule: " + rule);
    }

    @Test
    void rejectsControlCharactersAndNulWithoutEchoingThem() {
        for (String text : List.of("a\nb", "a\u0000b", "cirros:1\r", "a\u007fb")) {
            InvalidNameException e = assertThrows(InvalidNameException.class, () -> ImageName.parse(text));
            assertTrue(e.getMessage().contains("control characters and NUL"), e.getMessage());
            assertTrue(e.getMessage().chars().noneMatch(c -> c < 0x20 || c == 0x7f), "a log line cannot be forged: " + e.getMessage());
        }
    }

    @Test
    void rejectsEmptyNames() {
        InvalidNameException e = assertThrows(InvalidNameException.class, () -> ImageName.parse(""));
        assertTrue(e.getMessage().contains("empty"), e.getMessage());
        assertThrows(InvalidNameException.class, () -> ImageName.parse(":tag"));
    }

    @Test
    void rejectsOverlongComponentsAndNames() throws Exception {
        ImageName.parse("a".repeat(255) + "/b");
        InvalidNameException component = assertThrows(InvalidNameException.class, () -> ImageName.parse("a".repeat(256) + "/b"));
        assertTrue(component.getMessage().contains("at most 255 bytes"), component.getMessage());
        // 255 two-byte characters are 510 bytes: the limit is in bytes, not characters.
        assertThrows(InvalidNameException.class, () -> ImageName.parse("é".repeat(200)));

        String longName = String.join("/", java.util.Collections.nCopies(20, "b".repeat(250)));
        InvalidNameException whole = assertThrows(InvalidNameException.class, () -> ImageName.parse(longName));
        assertTrue(whole.getMessage().contains("at most 4096 bytes"), whole.getMessage());
        assertTrue(whole.getMessage().length() < 600, "the message does not echo 5000 bytes");
    }

    @Test
    void rejectsNamesWhoseByNameEntryExceedsNameMax() throws Exception {
        // by-name/ shows a/<component>:<tag> as the entry "<component>:<tag>", which rsync and tar must recreate.
        ImageName.parse("a/" + "c".repeat(250) + ":" + "t".repeat(4));
        ImageName.parse("c".repeat(248)); // + ":latest" is 255 bytes
        for (String text : List.of("a/" + "c".repeat(250) + ":" + "t".repeat(5), "c".repeat(249))) {
            InvalidNameException e = assertThrows(InvalidNameException.class, () -> ImageName.parse(text));
            assertTrue(e.getMessage().contains("at most 255 bytes (NAME_MAX)"), e.getMessage());
        }
        assertEquals("c".repeat(249), ImageName.parseExisting("c".repeat(249)).repository(), "an older store's name still reads");
    }

    @Test
    void rejectsTagsAndComponentsThatSpellABareDigest() throws Exception {
        for (String text : List.of("myapp:" + HEX, "myapp2/" + HEX, HEX, HEX + ":1", "example.com/" + HEX + "/x:1", "sha256:" + HEX)) {
            InvalidNameException e = assertThrows(InvalidNameException.class, () -> ImageName.parse(text), text);
            assertTrue(e.getMessage().contains("cannot be 64 lowercase hex digits"), e.getMessage());
            assertThrows(InvalidNameException.class, () -> Reference.parse(text + "@sha256:" + HEX), text);
            ImageName.parseExisting(text); // what an older version wrote can still be found and removed
        }
        ImageName.parse("myapp:" + HEX.substring(1));
        ImageName.parse("myapp:" + HEX.toUpperCase());
        ImageName.parse("myapp:" + HEX + "0");
    }

    @Test
    void rejectsATagOf129Characters() {
        InvalidNameException e = assertThrows(InvalidNameException.class,
                () -> ImageName.parse("cirros:" + "a".repeat(129)));
        assertTrue(e.getMessage().contains("1 to 128"), e.getMessage());
    }

    @Test
    void referenceCarriesAPinnedDigest() throws Exception {
        Reference reference = Reference.parse("x:1@sha256:" + HEX);
        assertEquals(ImageName.parse("x:1"), reference.name());
        assertEquals(Optional.of(new Digest(HEX)), reference.pin());
        assertEquals("x:1@sha256:" + HEX, reference.toString());
        assertEquals(Optional.empty(), Reference.parse("x").pin());
    }

    @Test
    void aSha512PinGetsAClearError() {
        InvalidNameException e = assertThrows(InvalidNameException.class,
                () -> Reference.parse("x@sha512:" + HEX + HEX));
        assertTrue(e.getMessage().contains("sha512"), e.getMessage());
        assertTrue(e.getMessage().contains("only sha256"), e.getMessage());
    }

    @Test
    void aPlainNameCannotCarryAPin() {
        InvalidNameException e = assertThrows(InvalidNameException.class, () -> ImageName.parse("x:1@sha256:" + HEX));
        assertTrue(e.getMessage().contains("pin"), e.getMessage());
    }

    @Test
    void badDigestShapesAreRejected() {
        for (String text : List.of("x@sha256:" + HEX.substring(1), "x@sha256:" + HEX.toUpperCase(), "x@", "x@" + HEX)) {
            assertThrows(InvalidNameException.class, () -> Reference.parse(text), text);
        }
    }

    @Test
    void aHugeDigestPartIsAnInvalidNameNotACrash() {
        // A regex with a repeated group recurses once per repetition: 100k of them overflow the stack.
        String hostile = "x@" + "a.".repeat(100_000) + "b:" + HEX;
        assertThrows(InvalidNameException.class, () -> Reference.parse(hostile));
        assertThrows(InvalidNameException.class, () -> Digest.parse("a-".repeat(100_000) + "a:" + HEX));
    }

    // ---- properties ----------------------------------------------------------------------

    @Property(tries = 1500)
    void everyValidNameRoundTrips(@ForAll("validNames") String text) throws Exception {
        ImageName name = ImageName.parse(text);
        assertEquals(name, ImageName.parse(name.toString()));
        String expected = text.lastIndexOf(':') > text.lastIndexOf('/') ? text : text + ":latest";
        assertEquals(expected, name.toString());
        Reference pinned = Reference.parse(text + "@sha256:" + HEX);
        assertEquals(name, pinned.name());
        assertEquals(pinned, Reference.parse(pinned.toString()));
    }

    @Property(tries = 1000)
    void arbitraryStringsOnlyEverFailAsInvalidNames(@ForAll String text) {
        parseExpectingOnlyInvalidName(text);
    }

    @Property(tries = 2000)
    void nameLikeStringsOnlyEverFailAsInvalidNames(@ForAll("nameLike") String text) {
        parseExpectingOnlyInvalidName(text);
    }

    private static void parseExpectingOnlyInvalidName(String text) {
        for (int kind = 0; kind < 3; kind++) {
            try {
                switch (kind) {
                    case 0 -> ImageName.parse(text);
                    case 1 -> Reference.parse(text);
                    default -> Digest.parse(text);
                }
            } catch (InvalidNameException expected) {
                assertTrue(expected.getMessage().chars().noneMatch(c -> c < 0x20), "control characters in the message");
            } catch (Throwable other) {
                fail("parsing '" + InvalidNameException.printable(text) + "' threw " + other, other);
            }
        }
    }

    @Provide
    Arbitrary<String> validNames() {
        return TestNames.validName();
    }

    @Provide
    Arbitrary<String> nameLike() {
        Arbitrary<String> fragment = Arbitraries.oneOf(
                Arbitraries.of("a", "z9", ".", "..", "-", "--", "_", "__", "/", "//", ":", "@", "A", "\u0000", "\n",
                        "é", "\uD800", "sha256:", "sha512:", HEX, "localhost", "example.com", ":5000", "latest"),
                Arbitraries.strings().ofMaxLength(4));
        Arbitrary<String> small = fragment.list().ofMaxSize(12).map(l -> String.join("", l));
        Arbitrary<String> huge = Arbitraries.of("a", "a.", "a/", "a-", "é", ":", "@", "0", "x:1@a.")
                .flatMap(f -> Arbitraries.integers().between(100, 20000).map(f::repeat));
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(9, small), net.jqwik.api.Tuple.of(1, huge));
    }
}
