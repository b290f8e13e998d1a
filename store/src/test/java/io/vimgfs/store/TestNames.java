package io.vimgfs.store;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;

/** Generators of names that SPEC §3's grammar accepts, shared by the property tests. */
final class TestNames {
    private static final String LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";
    private static final String ALNUM = LOWER_ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    private TestNames() {}

    /** {@code [a-z0-9]+(([._]|__|-+)[a-z0-9]+)*}: one path component. */
    static Arbitrary<String> pathComponent() {
        Arbitrary<String> run = Arbitraries.strings().withChars(LOWER_ALNUM).ofMinLength(1).ofMaxLength(6);
        Arbitrary<String> separator = Arbitraries.of(".", "_", "__", "-", "--", "---");
        return Combinators.combine(run.list().ofMinSize(1).ofMaxSize(4), separator.list().ofSize(3))
                .as((runs, separators) -> {
                    StringBuilder out = new StringBuilder(runs.get(0));
                    for (int i = 1; i < runs.size(); i++) {
                        out.append(separators.get(i - 1)).append(runs.get(i));
                    }
                    return out.toString();
                });
    }

    /** A registry host: dotted labels, or localhost, with an optional port. */
    static Arbitrary<String> host() {
        Arbitrary<String> label = Combinators.combine(
                        Arbitraries.strings().withChars(ALNUM).ofLength(1),
                        Arbitraries.strings().withChars(ALNUM + "-").ofMaxLength(6),
                        Arbitraries.strings().withChars(ALNUM).ofLength(1))
                .as((first, middle, last) -> first + middle + last);
        Arbitrary<String> dotted = label.list().ofMinSize(2).ofMaxSize(3).map(l -> String.join(".", l));
        Arbitrary<String> name = Arbitraries.oneOf(dotted, Arbitraries.just("localhost"));
        Arbitrary<String> port = Arbitraries.oneOf(Arbitraries.just(""),
                Arbitraries.integers().between(1, 65535).map(p -> ":" + p));
        return Combinators.combine(name, port).as(String::concat);
    }

    /** {@code [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}}, now and then at the full 128 characters. */
    static Arbitrary<String> tag() {
        Arbitrary<String> first = Arbitraries.strings().withChars(ALNUM + "_").ofLength(1);
        Arbitrary<String> rest = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(9, Arbitraries.strings().withChars(ALNUM + "_.-").ofMaxLength(12)),
                net.jqwik.api.Tuple.of(1, Arbitraries.strings().withChars(ALNUM + "_.-").ofLength(127)));
        return Combinators.combine(first, rest).as(String::concat);
    }

    /** {@code [host[:port]/]path[:tag]} as a user would type it. */
    static Arbitrary<String> validName() {
        Arbitrary<String> host = Arbitraries.oneOf(Arbitraries.just(""), host().map(h -> h + "/"));
        Arbitrary<String> path = pathComponent().list().ofMinSize(1).ofMaxSize(3).map(c -> String.join("/", c));
        Arbitrary<String> tag = Arbitraries.oneOf(Arbitraries.just(""), tag().map(t -> ":" + t));
        return Combinators.combine(host, path, tag).as((h, p, t) -> h + p + t);
    }
}
