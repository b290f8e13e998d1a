package io.vimgfs.store.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CredentialLookupTest {
    @TempDir
    Path dir;

    private static String auth(String user, String password) {
        return Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    }

    private Path write(String relative, String json) throws Exception {
        Path file = dir.resolve(relative);
        Files.createDirectories(file.getParent());
        Files.writeString(file, json);
        return file;
    }

    private CredentialLookup lookup(Map<String, String> env, Optional<Path> authFile) {
        return new CredentialLookup(Optional.empty(), authFile, env, dir.resolve("home"));
    }

    @Test
    void podmansOrderRuntimeAuthBeforeDockerConfigAndExplicitCredsFirst() throws Exception {
        write("run/containers/auth.json", "{\"auths\":{\"reg.example\":{\"auth\":\"" + auth("runtime", "p1") + "\"}}}");
        write("home/.docker/config.json", "{\"auths\":{\"reg.example\":{\"auth\":\"" + auth("docker", "p2") + "\"},"
                + "\"https://other.example/v1/\":{\"auth\":\"" + auth("other", "p3") + "\"}}}");
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.resolve("run").toString());
        assertEquals(Optional.of(new Credentials("runtime", "p1")), lookup(env, Optional.empty()).find("reg.example", "a/b"));
        assertEquals(Optional.of(new Credentials("other", "p3")), lookup(env, Optional.empty()).find("other.example", "a"));
        assertEquals(Optional.of(new Credentials("docker", "p2")), lookup(Map.of(), Optional.empty()).find("reg.example", "a"));
        assertEquals(Optional.empty(), lookup(env, Optional.empty()).find("nobody.example", "a"));
        CredentialLookup explicit = new CredentialLookup(Optional.of(Credentials.parse("me:pa:ss")), Optional.empty(), env, dir);
        assertEquals(Optional.of(new Credentials("me", "pa:ss")), explicit.find("reg.example", "a"));
    }

    @Test
    void authFileAndRegistryAuthFileReplaceTheRuntimeFileAndTheMostSpecificKeyWins() throws Exception {
        Path given = write("given.json", "{\"auths\":{\"reg.example\":{\"auth\":\"" + auth("host", "1") + "\"},"
                + "\"reg.example/team\":{\"auth\":\"" + auth("team", "2") + "\"},"
                + "\"reg.example/team/app\":{\"username\":\"app\",\"password\":\"3\"}}}");
        write("run/containers/auth.json", "{\"auths\":{\"reg.example\":{\"auth\":\"" + auth("runtime", "x") + "\"}}}");
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.resolve("run").toString());
        CredentialLookup withFile = lookup(env, Optional.of(given));
        assertEquals("app", withFile.find("reg.example", "team/app").orElseThrow().user());
        assertEquals("team", withFile.find("reg.example", "team/other").orElseThrow().user());
        assertEquals("host", withFile.find("reg.example", "teamx/app").orElseThrow().user());
        Map<String, String> withEnv = new HashMap<>(env);
        withEnv.put("REGISTRY_AUTH_FILE", given.toString());
        assertEquals("host", lookup(withEnv, Optional.empty()).find("reg.example", "x").orElseThrow().user());
        assertThrows(RegistryException.class, () -> lookup(env, Optional.of(dir.resolve("missing.json"))).find("reg.example", "x"));
    }

    @Test
    void credHelpersAndCredsStoreRunDockerCredentialPrograms() throws Exception {
        Path bin = dir.resolve("bin");
        Files.createDirectories(bin);
        for (String name : new String[] {"pass", "secretservice"}) {
            Path helper = bin.resolve("docker-credential-" + name);
            Files.writeString(helper, "#!/bin/sh\nread host\n[ \"$1\" = get ] || exit 3\n"
                    + "case $host in *.example) echo '{\"ServerURL\":\"'$host'\",\"Username\":\"" + name
                    + "\",\"Secret\":\"s-'$host'\"}' ;; *) echo 'credentials not found' ; exit 1 ;; esac\n");
            Files.setPosixFilePermissions(helper, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        write("home/.docker/config.json", "{\"credHelpers\":{\"helped.example\":\"pass\"},\"credsStore\":\"secretservice\","
                + "\"auths\":{\"listed.example\":{\"auth\":\"" + auth("inline", "i") + "\"}}}");
        Map<String, String> env = Map.of("PATH", bin + ":/usr/bin:/bin");
        assertEquals(Optional.of(new Credentials("pass", "s-helped.example")), lookup(env, Optional.empty()).find("helped.example", "a"));
        assertEquals(Optional.of(new Credentials("inline", "i")), lookup(env, Optional.empty()).find("listed.example", "a"));
        assertEquals(Optional.of(new Credentials("secretservice", "s-stored.example")),
                lookup(env, Optional.empty()).find("stored.example", "a"));
        assertEquals(Optional.empty(), lookup(env, Optional.empty()).find("127.0.0.1:5000", "a"));
    }
}
