package io.vimgfs.nativetest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vimgfs serve} as peers and OCI clients use it, on loopback: skopeo and vimgfs pull out
 * of it byte for byte, vimgfs push and skopeo copy into it, a mount of the served store shows a
 * push at once, and every route answers the distribution spec's status and error codes,
 * hostile and malformed input included. The second test runs it behind TLS and htpasswd.
 */
class ServeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern LISTENING = Pattern.compile("vimgfs serve: https?://127\\.0\\.0\\.1:(\\d+)/v2/");
    private static final String MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

    @TempDir
    Path dir;

    private final List<Process> servers = new ArrayList<>();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @AfterEach
    void stopServers() throws InterruptedException {
        for (Process server : servers) {
            server.destroy();
            if (!server.waitFor(10, TimeUnit.SECONDS)) {
                server.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void peersAndOciClientsPullAndPushThroughServeAndEveryRouteAnswersTheSpec() throws Exception {
        Path a = dir.resolve("a");
        Path b = dir.resolve("b");
        Path disk = Fixtures.randomQcow2(24);
        Path raw = Fixtures.small(dir, "raw.img", 3 << 20, 7);
        Shell.vimgfs(a, "import", disk.toString(), "vm/disk:1").ok();
        Shell.vimgfs(a, "import", raw.toString(), "vm/raw:2").ok();
        for (String tag : List.of("2", "3", "4")) {
            Shell.vimgfs(a, "tag", "vm/disk:1", "vm/disk:" + tag).ok();
        }
        String hostA = serve(a);

        // The catalog, tags with n/last pagination, manifests by tag and by digest.
        assertEquals(200, get(hostA, "/v2/").statusCode());
        assertEquals("registry/2.0", get(hostA, "/v2/").headers().firstValue("Docker-Distribution-API-Version").orElse(""));
        assertEquals(List.of("vm/disk", "vm/raw"), strings(json(get(hostA, "/v2/_catalog")).path("repositories")));
        HttpResponse<byte[]> page = get(hostA, "/v2/vm/disk/tags/list?n=2");
        assertEquals(List.of("1", "2"), strings(json(page).path("tags")));
        assertTrue(page.headers().firstValue("Link").orElse("").contains("last=2"), page.headers().toString());
        assertEquals(List.of("3", "4"), strings(json(get(hostA, "/v2/vm/disk/tags/list?n=2&last=2")).path("tags")));
        assertEquals(List.of(), strings(json(get(hostA, "/v2/vm/disk/tags/list?n=0")).path("tags")));
        HttpResponse<byte[]> manifest = get(hostA, "/v2/vm/disk/manifests/1");
        assertEquals(200, manifest.statusCode());
        assertEquals(MANIFEST_TYPE, manifest.headers().firstValue("Content-Type").orElse(""));
        String manifestDigest = "sha256:" + sha256(manifest.body());
        assertEquals(manifestDigest, manifest.headers().firstValue("Docker-Content-Digest").orElse(""));
        assertArrayEquals(manifest.body(), get(hostA, "/v2/vm/disk/manifests/" + manifestDigest).body());
        HttpResponse<byte[]> head = send(hostA, "HEAD", "/v2/vm/disk/manifests/1", new byte[0]);
        assertEquals(200, head.statusCode());
        assertEquals(String.valueOf(manifest.body().length), head.headers().firstValue("Content-Length").orElse(""));

        // Blobs whole and by Range, and a range past the end.
        String layer = JSON.readTree(manifest.body()).path("layers").get(0).path("digest").asText();
        assertEquals("sha256:" + Shell.sha256(disk), layer);
        byte[] original = Files.readAllBytes(disk);
        assertEquals(layer, "sha256:" + sha256(get(hostA, "/v2/vm/disk/blobs/" + layer).body()));
        HttpResponse<byte[]> ranged = get(hostA, "/v2/vm/disk/blobs/" + layer, "Range", "bytes=1048570-1048589");
        assertEquals(206, ranged.statusCode());
        assertEquals("bytes 1048570-1048589/" + original.length, ranged.headers().firstValue("Content-Range").orElse(""));
        assertArrayEquals(Arrays.copyOfRange(original, 1048570, 1048590), ranged.body());
        HttpResponse<byte[]> suffix = get(hostA, "/v2/vm/disk/blobs/" + layer, "Range", "bytes=-10");
        assertArrayEquals(Arrays.copyOfRange(original, original.length - 10, original.length), suffix.body());
        HttpResponse<byte[]> past = get(hostA, "/v2/vm/disk/blobs/" + layer, "Range", "bytes=" + original.length + "-");
        assertEquals(416, past.statusCode());
        assertEquals("bytes */" + original.length, past.headers().firstValue("Content-Range").orElse(""));

        // Errors as the spec's codes, and names and digests checked before they reach the store.
        refused(get(hostA, "/v2/vm/disk/manifests/nope"), 404, "MANIFEST_UNKNOWN");
        refused(get(hostA, "/v2/vm/disk/blobs/sha256:" + "0".repeat(64)), 404, "BLOB_UNKNOWN");
        refused(get(hostA, "/v2/vm/disk/blobs/sha256:xyz"), 400, "DIGEST_INVALID");
        refused(get(hostA, "/v2/vm/disk/blobs/md5:" + "0".repeat(32)), 400, "DIGEST_INVALID");
        refused(get(hostA, "/v2/VM/disk/tags/list"), 400, "NAME_INVALID");
        refused(get(hostA, "/v2/" + "a".repeat(300) + "/tags/list"), 400, "NAME_INVALID");
        assertEquals(400, get(hostA, "/v2/vm%2F..%2F..%2Fetc/tags/list").statusCode());
        refused(get(hostA, "/v2/nothing/here/tags/list"), 404, "NAME_UNKNOWN");
        refused(get(hostA, "/v2/vm/disk/tags/list?n=-1"), 400, "UNSUPPORTED");
        refused(get(hostA, "/v2/vm/disk/manifests/.INVALID_MANIFEST_NAME"), 404, "MANIFEST_UNKNOWN");
        assertEquals(404, send(hostA, "HEAD", "/v2/vm/disk/manifests/.INVALID_MANIFEST_NAME", null).statusCode());
        JsonNode referrers = json(get(hostA, "/v2/vm/disk/referrers/" + manifestDigest));
        assertEquals("application/vnd.oci.image.index.v1+json", referrers.path("mediaType").asText());
        assertEquals(0, referrers.path("manifests").size());

        // skopeo copies out of it byte for byte; vimgfs pulls from it into another store.
        Path out = dir.resolve("out");
        Shell.run("skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + hostA + "/vm/disk:1",
                "oci:" + out + ":copied").ok();
        assertEquals(Shell.sha256(disk), Shell.sha256(out.resolve("blobs/sha256").resolve(layer.substring(7))));
        assertTrue(Files.exists(out.resolve("blobs/sha256").resolve(manifestDigest.substring(7))), "same manifest digest");
        Shell.vimgfs(b, "pull", "--tls-verify=false", "docker://" + hostA + "/vm/disk:1", "from-a:1").ok();
        assertTrue(ls(b).contains("from-a:1 " + Shell.sha256(disk)), ls(b));

        // Pushes into a second server: vimgfs push, and skopeo copy (POST, streamed PATCH, PUT).
        String hostB = serve(b);
        try (MountedStore mounted = MountedStore.mount(b, dir.resolve("mnt-b"))) {
            Shell.vimgfs(a, "push", "--tls-verify=false", "vm/raw:2", "docker://" + hostB + "/pushed/raw:2").ok();
            Eventually.within(Duration.ofSeconds(2), "the mount shows the pushed image",
                    () -> Files.exists(mounted.path("tags/pushed/raw/2")));
            assertEquals(Shell.sha256(raw), Shell.sha256(mounted.path("tags/pushed/raw/2")));
        }
        JsonNode served = JSON.readTree(get(hostB, "/v2/pushed/raw/manifests/2").body());
        JsonNode index = served.path("layers").get(1);
        assertEquals("application/vnd.vimgfs.chunks.v1", index.path("mediaType").asText(), "the push's chunk index is kept");
        assertEquals(index.path("size").asLong(), get(hostB, "/v2/pushed/raw/blobs/" + index.path("digest").asText()).body().length);
        Shell.run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + out + ":copied",
                "docker://" + hostB + "/skopeo/disk:1").ok();
        assertTrue(ls(b).contains("skopeo/disk:1 " + Shell.sha256(disk)), ls(b));
        assertEquals(manifestDigest, get(hostB, "/v2/skopeo/disk/manifests/1").headers()
                .firstValue("Docker-Content-Digest").orElse(""), "the pushed manifest is kept byte for byte");

        // A chunked upload: in order, its status, an out-of-order chunk, a wrong digest, a cancel.
        byte[] blob = "chunked blob bytes".getBytes();
        HttpResponse<byte[]> started = send(hostB, "POST", "/v2/chunks/x/blobs/uploads/", new byte[0]);
        assertEquals(202, started.statusCode());
        String location = started.headers().firstValue("Location").orElseThrow();
        HttpResponse<byte[]> chunk = send(hostB, "PATCH", location, Arrays.copyOf(blob, 7), "Content-Range", "0-6");
        assertEquals(202, chunk.statusCode());
        assertEquals("0-6", chunk.headers().firstValue("Range").orElse(""));
        assertEquals("0-6", send(hostB, "GET", location, null).headers().firstValue("Range").orElse(""));
        refused(send(hostB, "PATCH", location, Arrays.copyOfRange(blob, 9, 12), "Content-Range", "9-11"), 416, "BLOB_UPLOAD_INVALID");
        HttpResponse<byte[]> done = send(hostB, "PUT", location + "?digest=sha256:" + sha256(blob),
                Arrays.copyOfRange(blob, 7, blob.length), "Content-Range", "7-" + (blob.length - 1));
        assertEquals(201, done.statusCode());
        assertArrayEquals(blob, get(hostB, done.headers().firstValue("Location").orElseThrow()).body());
        String other = send(hostB, "POST", "/v2/chunks/x/blobs/uploads/", new byte[0]).headers().firstValue("Location").orElseThrow();
        refused(send(hostB, "PUT", other + "?digest=sha256:" + "1".repeat(64), blob), 400, "DIGEST_INVALID");
        String cancelled = send(hostB, "POST", "/v2/chunks/x/blobs/uploads/", new byte[0]).headers().firstValue("Location").orElseThrow();
        assertEquals(204, send(hostB, "DELETE", cancelled, null).statusCode());
        refused(send(hostB, "GET", cancelled, null), 404, "BLOB_UPLOAD_UNKNOWN");
        HttpResponse<byte[]> mountedBlob = send(hostB, "POST", "/v2/elsewhere/blobs/uploads/?mount=" + layer + "&from=skopeo/disk", new byte[0]);
        assertEquals(201, mountedBlob.statusCode(), "a cross-repository mount of a stored blob");

        // What is not a safe disk is refused with DENIED and a message, and nothing of it is named.
        String before = ls(b);
        Path hostile = dir.resolve("hostile.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", "-u", hostile.toString(), "1M").ok();
        HttpResponse<byte[]> denied = pushArtifact(hostB, "evil/disk", "1", Files.readAllBytes(hostile), "qcow2", 1 << 20);
        refused(denied, 403, "DENIED");
        assertTrue(json(denied).path("errors").get(0).path("message").asText().contains("/etc/shadow"), new String(denied.body()));
        refused(send(hostB, "PUT", "/v2/x/y/manifests/1", "not json".getBytes(), "Content-Type", MANIFEST_TYPE), 400, "MANIFEST_INVALID");
        ObjectNode unknownBlob = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", MANIFEST_TYPE);
        unknownBlob.set("config", descriptor("application/vnd.oci.image.config.v1+json", "never pushed".getBytes()));
        refused(send(hostB, "PUT", "/v2/x/y/manifests/1", JSON.writeValueAsBytes(unknownBlob), "Content-Type", MANIFEST_TYPE),
                400, "MANIFEST_BLOB_UNKNOWN");
        assertEquals(before, ls(b));

        // Other OCI content is kept byte for byte, never mounted: a container image, and a referrer by digest.
        ObjectNode containerJson = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", MANIFEST_TYPE);
        containerJson.set("config", descriptor("application/vnd.oci.image.config.v1+json", blob));
        containerJson.putArray("layers");
        byte[] container = JSON.writeValueAsBytes(containerJson);
        String containerDigest = "sha256:" + sha256(container);
        HttpResponse<byte[]> kept = send(hostB, "PUT", "/v2/library/busybox/manifests/1", container, "Content-Type", MANIFEST_TYPE);
        assertEquals(201, kept.statusCode(), new String(kept.body()));
        assertEquals(containerDigest, kept.headers().firstValue("Docker-Content-Digest").orElse(""));
        assertArrayEquals(container, get(hostB, "/v2/library/busybox/manifests/1").body());
        ObjectNode signature = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", MANIFEST_TYPE)
                .put("artifactType", "application/vnd.example.signature");
        signature.set("config", descriptor("application/vnd.oci.empty.v1+json", blob));
        signature.putArray("layers");
        signature.putObject("subject").put("mediaType", MANIFEST_TYPE).put("digest", containerDigest).put("size", container.length);
        byte[] signatureBytes = JSON.writeValueAsBytes(signature);
        HttpResponse<byte[]> referred = send(hostB, "PUT", "/v2/library/busybox/manifests/sha256:" + sha256(signatureBytes),
                signatureBytes, "Content-Type", MANIFEST_TYPE);
        assertEquals(201, referred.statusCode(), new String(referred.body()));
        assertEquals(containerDigest, referred.headers().firstValue("OCI-Subject").orElse(""));
        JsonNode listed = json(get(hostB, "/v2/library/busybox/referrers/" + containerDigest));
        assertEquals(1, listed.path("manifests").size(), listed.toString());
        assertEquals("application/vnd.example.signature", listed.path("manifests").get(0).path("artifactType").asText());
        HttpResponse<byte[]> filtered = get(hostB, "/v2/library/busybox/referrers/" + containerDigest + "?artifactType=text/plain");
        assertEquals(0, json(filtered).path("manifests").size());
        assertEquals("artifactType", filtered.headers().firstValue("OCI-Filters-Applied").orElse(""));
        Path image = dir.resolve("image");
        Shell.run("skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + hostB + "/library/busybox:1",
                "oci:" + image + ":busybox").ok();
        Shell.run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + image + ":busybox",
                "docker://" + hostB + "/again/busybox:2").ok();
        assertEquals(containerDigest, get(hostB, "/v2/again/busybox/manifests/2").headers().firstValue("Docker-Content-Digest").orElse(""));
        assertEquals(before, ls(b), "none of it is a disk image");
        assertEquals(202, send(hostB, "DELETE", "/v2/again/busybox/manifests/2", null).statusCode());
        refused(get(hostB, "/v2/again/busybox/manifests/2"), 404, "MANIFEST_UNKNOWN");

        // Deleting a tag untags it; the image goes with its last name; fsck is clean throughout.
        assertEquals(202, send(hostB, "DELETE", "/v2/pushed/raw/manifests/2", null).statusCode());
        refused(get(hostB, "/v2/pushed/raw/manifests/2"), 404, "MANIFEST_UNKNOWN");
        assertFalse(ls(b).contains("pushed/raw"), ls(b));
        refused(send(hostB, "DELETE", "/v2/skopeo/disk/blobs/" + layer, null), 405, "UNSUPPORTED");
        assertTrue(Shell.vimgfs(b, "fsck").ok().out().contains("clean"));

        // --read-only refuses every write.
        String readOnly = serve(a, "--read-only");
        refused(send(readOnly, "POST", "/v2/vm/disk/blobs/uploads/", new byte[0]), 405, "UNSUPPORTED");
        refused(send(readOnly, "DELETE", "/v2/vm/disk/manifests/1", null), 405, "UNSUPPORTED");
        assertEquals(200, get(readOnly, "/v2/vm/disk/manifests/1").statusCode());
    }

    @Test
    void behindTlsAndHtpasswdOnlyUsersGetInAndAnonymousReadLetsAnyonePull() throws Exception {
        Path store = dir.resolve("store");
        Path raw = Fixtures.small(dir, "raw.img", 1 << 20, 11);
        Shell.vimgfs(store, "import", raw.toString(), "tls/raw:1").ok();
        Path cert = dir.resolve("cert.pem");
        Path key = dir.resolve("key.pem");
        Shell.run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.toString(), "-out",
                cert.toString(), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1").ok();
        Path htpasswd = dir.resolve("htpasswd");
        Files.writeString(htpasswd, Shell.run("htpasswd", "-Bbn", "alice", "s3cret").ok().out());

        String host = serve(store, "--tls-cert", cert.toString(), "--tls-key", key.toString(), "--htpasswd", htpasswd.toString());
        Shell.Result anonymous = Shell.run("curl", "-sk", "-D", "-", "-o", "/dev/null", "https://" + host + "/v2/");
        assertTrue(anonymous.out().startsWith("HTTP/1.1 401"), anonymous.out());
        assertTrue(anonymous.out().contains("WWW-Authenticate: Basic realm=\"vimgfs\""), anonymous.out());
        assertEquals("401", curlStatus("-u", "alice:wrong", "https://" + host + "/v2/"));
        assertEquals("200", curlStatus("-u", "alice:s3cret", "https://" + host + "/v2/"));
        Path other = dir.resolve("other");
        Shell.vimgfs(other, "pull", "--tls-verify=false", "--creds", "alice:s3cret", "docker://" + host + "/tls/raw:1").ok();
        assertTrue(ls(other).contains("tls/raw:1 " + Shell.sha256(raw)), ls(other));
        Shell.vimgfs(other, "pull", "--tls-verify=false", "--creds", "alice:wrong", "docker://" + host + "/tls/raw:1", "x:1").failed();

        String open = serve(store, "--tls-cert", cert.toString(), "--tls-key", key.toString(), "--htpasswd",
                htpasswd.toString(), "--anonymous-read");
        assertEquals("200", curlStatus("https://" + open + "/v2/tls/raw/manifests/1"));
        assertEquals("401", curlStatus("-X", "POST", "https://" + open + "/v2/tls/raw/blobs/uploads/"));

        // Command-line mistakes are one line and exit 2, before anything listens.
        Shell.Result clear = Shell.vimgfs(store, "serve", "--listen", "0.0.0.0:0", "--htpasswd", htpasswd.toString());
        assertEquals(2, clear.exit());
        assertTrue(clear.err().contains("passwords in the clear"), clear.err());
        assertEquals(2, Shell.vimgfs(store, "serve", "--tls-cert", cert.toString()).exit());
        Shell.Result badKey = Shell.vimgfs(store, "serve", "--listen", "127.0.0.1:0", "--tls-cert", cert.toString(),
                "--tls-key", cert.toString());
        assertEquals(1, badKey.exit());
        assertTrue(badKey.err().contains("PKCS#8"), badKey.err());
    }

    @Test
    void dockerRegistryIsAPeerBothWaysAndUploadsStayWithinTheirBounds() throws Exception {
        Path store = dir.resolve("store");
        Path raw = Fixtures.small(dir, "raw.img", 2 << 20, 13);
        Shell.vimgfs(store, "import", raw.toString(), "vm/raw:1").ok();
        String served = serve(store, "--max-uploads", "2");
        String registry = dockerRegistry();

        // skopeo between vimgfs serve and docker-registry, both directions: the same digests.
        Shell.run("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                "docker://" + served + "/vm/raw:1", "docker://" + registry + "/peer/raw:1").ok();
        String digest = get(served, "/v2/vm/raw/manifests/1").headers().firstValue("Docker-Content-Digest").orElseThrow();
        assertEquals(digest, get(registry, "/v2/peer/raw/manifests/1", "Accept", MANIFEST_TYPE).headers().firstValue("Docker-Content-Digest").orElse(""));
        Shell.run("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                "docker://" + registry + "/peer/raw:1", "docker://" + served + "/back/raw:1").ok();
        assertTrue(ls(store).contains("back/raw:1 " + Shell.sha256(raw)), ls(store));

        // A containerDisk pushed with skopeo is kept byte for byte and its disk named in the store;
        // a hostile one refuses the whole push.
        Path disk = Fixtures.randomQcow2(8);
        Path layout = containerDiskLayout("cd", disk);
        Shell.run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout + ":cd",
                "docker://" + served + "/containerdisks/fedora:40").ok();
        assertTrue(ls(store).contains("containerdisks/fedora:40 " + Shell.sha256(disk)), ls(store));
        String pushedManifest = "sha256:" + JSON.readTree(layout.resolve("index.json").toFile()).path("manifests").get(0)
                .path("digest").asText().substring(7);
        assertEquals(pushedManifest, get(served, "/v2/containerdisks/fedora/manifests/40").headers()
                .firstValue("Docker-Content-Digest").orElse(""), "the registry serves the containerDisk, not its disk's artifact");
        Path hostile = dir.resolve("hostile.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", "-u", hostile.toString(), "1M").ok();
        Shell.Result refusedPush = Shell.run("skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                "oci:" + containerDiskLayout("evil", hostile) + ":cd", "docker://" + served + "/evil/disk:1");
        assertTrue(refusedPush.exit() != 0 && refusedPush.err().contains("/etc/shadow"), refusedPush.err());
        assertFalse(ls(store).contains("evil"), ls(store));
        refused(get(served, "/v2/evil/disk/manifests/1"), 404, "MANIFEST_UNKNOWN");

        // At most --max-uploads at once; a body larger than the disk is refused before a byte is written.
        String first = send(served, "POST", "/v2/b/x/blobs/uploads/", new byte[0]).headers().firstValue("Location").orElseThrow();
        assertEquals(202, send(served, "POST", "/v2/b/x/blobs/uploads/", new byte[0]).statusCode());
        refused(send(served, "POST", "/v2/b/x/blobs/uploads/", new byte[0]), 429, "TOOMANYREQUESTS");
        assertEquals(204, send(served, "DELETE", first, null).statusCode());
        String upload = send(served, "POST", "/v2/b/x/blobs/uploads/", new byte[0]).headers().firstValue("Location").orElseThrow();
        long free = Files.getFileStore(store).getUsableSpace();
        Shell.Result huge = Shell.run("curl", "-s", "-X", "PATCH", "-H", "Content-Length: " + (free + (1L << 30)),
                "--data-binary", "a few bytes", "-w", "\\n%{http_code}", "http://" + served + upload);
        assertTrue(huge.out().strip().endsWith("413"), huge.out());
        assertTrue(huge.out().contains("SIZE_INVALID"), huge.out());
        try (var staged = Files.list(store.resolve(".vimgfs/staging"))) {
            assertTrue(staged.allMatch(f -> f.toFile().length() == 0), "nothing of the refused body was written");
        }
        assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
    }

    @Test
    void aServerKilledRightAfterAnAcknowledgedPushOrMidUploadLosesNothingAndLeavesOnlyWhatGcRemoves() throws Exception {
        Path source = dir.resolve("source");
        Path store = dir.resolve("store");
        Path raw = Fixtures.small(dir, "raw.img", 4 << 20, 17);
        Shell.vimgfs(source, "import", raw.toString(), "vm/raw:1").ok();
        String host = serve(store);
        Shell.vimgfs(source, "push", "--tls-verify=false", "vm/raw:1", "docker://" + host + "/vm/raw:1").ok();
        Process server = servers.get(servers.size() - 1);
        server.destroyForcibly().waitFor(10, TimeUnit.SECONDS); // SIGKILL, right after the 201

        assertTrue(ls(store).contains("vm/raw:1 " + Shell.sha256(raw)), "an acknowledged push survives: " + ls(store));
        assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));

        String again = serve(store);
        String upload = send(again, "POST", "/v2/vm/half/blobs/uploads/", new byte[0]).headers().firstValue("Location").orElseThrow();
        assertEquals(202, send(again, "PATCH", upload, new byte[1 << 20]).statusCode());
        servers.get(servers.size() - 1).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        try (var staged = Files.list(store.resolve(".vimgfs/staging"))) {
            assertEquals(1, staged.count(), "the killed upload's staging file");
        }
        Shell.vimgfs(store, "gc").ok();
        try (var staged = Files.list(store.resolve(".vimgfs/staging"))) {
            assertEquals(0, staged.count(), "gc removed what the killed server left");
        }
        assertTrue(ls(store).contains("vm/raw:1 "), ls(store));
        assertTrue(Shell.vimgfs(store, "fsck").ok().out().contains("clean"));
    }

    /** An OCI layout holding one KubeVirt containerDisk (a gzip tar layer with disk/disk.img), tagged "cd". */
    private Path containerDiskLayout(String name, Path disk) throws Exception {
        Path tree = Files.createDirectories(dir.resolve(name + "-tree/disk"));
        Files.copy(disk, tree.resolve("disk.img"));
        Path tar = dir.resolve(name + ".tar");
        Shell.run("tar", "-cf", tar.toString(), "--owner=107", "--group=107", "-C", tree.getParent().toString(), "disk").ok();
        String diffId = "sha256:" + Shell.sha256(tar);
        Shell.run("gzip", "-n", tar.toString()).ok();
        byte[] layer = Files.readAllBytes(dir.resolve(name + ".tar.gz"));
        byte[] config = JSON.writeValueAsBytes(JSON.createObjectNode().put("architecture", "amd64").put("os", "linux")
                .set("rootfs", JSON.createObjectNode().put("type", "layers").set("diff_ids", JSON.createArrayNode().add(diffId))));
        ObjectNode manifest = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", MANIFEST_TYPE);
        manifest.set("config", descriptor("application/vnd.oci.image.config.v1+json", config));
        manifest.putArray("layers").add(descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer));
        byte[] manifestBytes = JSON.writeValueAsBytes(manifest);
        Path layout = Files.createDirectories(dir.resolve(name + "-layout/blobs/sha256")).getParent().getParent();
        for (byte[] blob : List.of(layer, config, manifestBytes)) {
            Files.write(layout.resolve("blobs/sha256").resolve(sha256(blob)), blob);
        }
        Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        ObjectNode index = JSON.createObjectNode().put("schemaVersion", 2);
        index.putArray("manifests").add(descriptor(MANIFEST_TYPE, manifestBytes)
                .set("annotations", JSON.createObjectNode().put("org.opencontainers.image.ref.name", "cd")));
        Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(index));
        return layout;
    }

    private String dockerRegistry() throws Exception {
        int port;
        try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            port = socket.getLocalPort();
        }
        Path config = dir.resolve("registry.yml");
        Files.writeString(config, "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                + dir.resolve("registry") + "\nhttp:\n  addr: 127.0.0.1:" + port + "\n  secret: vimgfs-test\n");
        servers.add(new ProcessBuilder("docker-registry", "serve", config.toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("registry.log").toFile()).start());
        String host = "127.0.0.1:" + port;
        Eventually.within(Duration.ofSeconds(30), "docker-registry answering", () -> {
            try {
                return get(host, "/v2/").statusCode() == 200;
            } catch (Exception e) {
                return false;
            }
        });
        return host;
    }

    /** Starts {@code vimgfs serve} on a port the kernel picks; returns 127.0.0.1:PORT once it listens. */
    private String serve(Path store, String... extra) throws Exception {
        List<String> command = new ArrayList<>(List.of(Shell.java(), "-jar", Shell.jar().toString(), "--store",
                store.toString(), "serve", "--listen", "127.0.0.1:0"));
        command.addAll(List.of(extra));
        Path log = Files.createTempFile(dir, "serve", ".log");
        Process server = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        servers.add(server);
        String[] port = new String[1];
        Eventually.within(Duration.ofSeconds(30), "vimgfs serve listening", () -> {
            try {
                Matcher m = LISTENING.matcher(Files.readString(log));
                if (m.find()) {
                    port[0] = m.group(1);
                }
            } catch (IOException e) {
                return false;
            }
            return port[0] != null || !server.isAlive();
        });
        assertTrue(server.isAlive(), "vimgfs serve exited: " + Files.readString(log));
        return "127.0.0.1:" + port[0];
    }

    /** Pushes a one-layer vimgfs artifact with single-shot POSTs, as a client that knows its digests does. */
    private HttpResponse<byte[]> pushArtifact(String host, String repository, String tag, byte[] layer, String format,
            long virtualSize) throws Exception {
        byte[] config = JSON.writeValueAsBytes(JSON.createObjectNode().put("format", format).put("virtualSize", virtualSize)
                .put("created", "2026-12-04T00:00:00Z"));
        for (byte[] blob : List.of(layer, config)) {
            HttpResponse<byte[]> posted = send(host, "POST", "/v2/" + repository + "/blobs/uploads/?digest=sha256:" + sha256(blob), blob);
            assertEquals(201, posted.statusCode(), new String(posted.body()));
        }
        ObjectNode manifest = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", MANIFEST_TYPE)
                .put("artifactType", "application/vnd.vimgfs.image.v1");
        manifest.set("config", descriptor("application/vnd.vimgfs.image.config.v1+json", config));
        manifest.putArray("layers").add(descriptor("application/vnd.vimgfs.disk.qcow2", layer));
        return send(host, "PUT", "/v2/" + repository + "/manifests/" + tag, JSON.writeValueAsBytes(manifest),
                "Content-Type", MANIFEST_TYPE);
    }

    private static ObjectNode descriptor(String mediaType, byte[] blob) {
        return JSON.createObjectNode().put("mediaType", mediaType).put("digest", "sha256:" + sha256(blob)).put("size", blob.length);
    }

    private HttpResponse<byte[]> get(String host, String path, String... headers) throws Exception {
        return send(host, "GET", path, null, headers);
    }

    private HttpResponse<byte[]> send(String host, String method, String path, byte[] body, String... headers) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://" + host + path)).timeout(Duration.ofSeconds(60))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        for (int i = 0; i < headers.length; i += 2) {
            request.header(headers[i], headers[i + 1]);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    private static void refused(HttpResponse<byte[]> response, int status, String code) throws IOException {
        String body = new String(response.body());
        assertEquals(status, response.statusCode(), response.request().method() + " " + response.request().uri() + ": " + body);
        assertEquals(code, json(response).path("errors").get(0).path("code").asText(), body);
        assertFalse(json(response).path("errors").get(0).path("message").asText().isEmpty(), body);
    }

    private static String curlStatus(String... args) {
        List<String> command = new ArrayList<>(List.of("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}"));
        command.addAll(List.of(args));
        return Shell.run(command.toArray(String[]::new)).out().strip();
    }

    private static JsonNode json(HttpResponse<byte[]> response) throws IOException {
        return JSON.readTree(response.body());
    }

    private static List<String> strings(JsonNode array) {
        List<String> values = new ArrayList<>();
        array.forEach(v -> values.add(v.asText()));
        return values;
    }

    private static String ls(Path store) {
        return Shell.vimgfs(store, "ls").ok().out().lines().map(l -> String.join(" ", l.trim().split("\\s+")))
                .reduce("", (x, y) -> x + y + "\n");
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
