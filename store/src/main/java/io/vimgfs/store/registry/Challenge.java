package io.vimgfs.store.registry;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * One {@code WWW-Authenticate} challenge (RFC 7235): a scheme and its parameters, e.g.
 * {@code Bearer realm="https://auth.example/token",service="registry.example"}. The parser is
 * lenient where registries are sloppy (unquoted values, spaces around '=', several challenges in
 * one header) and never fails: what it cannot read it leaves out.
 */
public record Challenge(String scheme, Map<String, String> parameters) {

    public Challenge {
        scheme = scheme.toLowerCase(Locale.ROOT);
        parameters = Map.copyOf(parameters);
    }

    public Optional<String> parameter(String name) {
        return Optional.ofNullable(parameters.get(name.toLowerCase(Locale.ROOT)));
    }

    public boolean isBasic() {
        return scheme.equals("basic");
    }

    public boolean isBearer() {
        return scheme.equals("bearer");
    }

    /** Every challenge in the given header values, in order. */
    public static List<Challenge> parseAll(List<String> headerValues) {
        List<Challenge> all = new ArrayList<>();
        for (String value : headerValues) {
            all.addAll(parse(value));
        }
        return all;
    }

    /** The challenges in one header value. */
    public static List<Challenge> parse(String header) {
        Lexer lexer = new Lexer(header);
        List<Challenge> challenges = new ArrayList<>();
        String scheme = null;
        Map<String, String> parameters = new LinkedHashMap<>();
        while (true) {
            lexer.skip(" \t,");
            String token = lexer.token();
            if (token.isEmpty()) {
                if (!lexer.atEnd()) {
                    lexer.advance(); // a stray character: skip it rather than give up on the rest
                    continue;
                }
                break;
            }
            lexer.skip(" \t");
            if (lexer.peek() == '=' && scheme != null && !lexer.isToken68Padding()) {
                lexer.advance();
                lexer.skip(" \t");
                String value = lexer.peek() == '"' ? lexer.quoted() : lexer.token();
                parameters.put(token.toLowerCase(Locale.ROOT), value);
            } else {
                if (scheme != null) {
                    challenges.add(new Challenge(scheme, parameters));
                }
                scheme = token;
                parameters = new LinkedHashMap<>();
            }
        }
        if (scheme != null) {
            challenges.add(new Challenge(scheme, parameters));
        }
        return challenges;
    }

    /** Reads tokens and quoted strings from a header value. */
    private static final class Lexer {
        private final String text;
        private int at;

        Lexer(String text) {
            this.text = text;
        }

        boolean atEnd() {
            return at >= text.length();
        }

        char peek() {
            return atEnd() ? '\0' : text.charAt(at);
        }

        void advance() {
            at++;
        }

        void skip(String characters) {
            while (!atEnd() && characters.indexOf(peek()) >= 0) {
                at++;
            }
        }

        /** A token68 (base64 credentials after the scheme) may end in '=' padding: not a parameter. */
        boolean isToken68Padding() {
            int next = at;
            while (next < text.length() && text.charAt(next) == '=') {
                next++;
            }
            return next == text.length() || text.charAt(next) == ',' && next > at + 1;
        }

        String token() {
            int start = at;
            while (!atEnd() && "\"=, \t".indexOf(peek()) < 0) {
                at++;
            }
            return text.substring(start, at);
        }

        String quoted() {
            StringBuilder value = new StringBuilder();
            at++; // opening quote
            while (!atEnd() && peek() != '"') {
                if (peek() == '\\' && at + 1 < text.length()) {
                    at++;
                }
                value.append(peek());
                at++;
            }
            if (!atEnd()) {
                at++; // the closing quote; a truncated header simply ends
            }
            return value.toString();
        }
    }
}
