package io.vimgfs.nativetest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every error message the README quotes from vimgfs, and the errno texts it says cp, sh, qemu-io
 * and ls print on the mount, checked against what those tools print on a real run (issue 17: the
 * README had contradicted itself). One mount, a few seconds. libvirt's messages are checked by
 * hand (see the commit that fixed them); LibvirtTest boots the README's XML.
 */
class ReadmeMessagesTest {
    private static final String WRONG_PIN = "ab".repeat(32);

    @TempDir
    Path dir;

    @Test
    void whatTheReadmeQuotesIsWhatTheToolsPrint() throws Exception {
        Path image = Fixtures.small(dir, "image.raw", 1 << 20, 71);
        String hex = Fixtures.sha256(image);
        try (MountedStore m = MountedStore.mount(dir)) {
            incomingTable(m, image);
            Shell.run("cp", image.toString(), m.at("incoming/app:1")).ok();

            Readme.assertQuotes("A read-write open of an image in the store fails with \"Operation not permitted\"",
                    "Operation not permitted", Shell.run("qemu-io", "-f", "raw", "-c", "write 0 512", m.at("tags/app/1")).failed().err());
            Path overlay = dir.resolve("overlay.qcow2");
            Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "cd".repeat(32), overlay.toString(), "1M").ok();
            Readme.assertQuotes("The base must be stored first (else `cp` fails with \"Operation not permitted\")",
                    "Operation not permitted", Shell.run("cp", overlay.toString(), m.at("incoming/overlay:1")).failed().err());

            keepReasons(m, hex);
            daemonThatDoesNotAnswer(m);
            Readme.assertQuotes("\"does not match the pinned …\"", "does not match the pinned …",
                    Shell.vimgfs(m.store, "import", image.toString(), "pinned:1@sha256:" + WRONG_PIN).failed().err());
            registryMessages(m.store);
            restart(m);
        }
    }

    /** The incoming/ table: what cp prints for each refusal. */
    private void incomingTable(MountedStore m, Path image) throws IOException {
        Readme.assertRowSays("a name that breaks the grammar", "Invalid argument",
                Shell.run("cp", image.toString(), m.at("incoming/BAD")).failed().err());
        Readme.assertRowSays("a pinned digest that does not match", "Input/output error",
                Shell.run("cp", image.toString(), m.at("incoming/pin:1@sha256:" + WRONG_PIN)).failed().err());
        Path qcow2 = dir.resolve("full.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", qcow2.toString(), "8M").ok();
        Shell.run("qemu-io", "-c", "write -P 0x11 0 1M", qcow2.toString()).ok();
        Path truncated = dir.resolve("truncated.qcow2");
        Files.write(truncated, java.util.Arrays.copyOf(Files.readAllBytes(qcow2), 200_000));
        Readme.assertRowSays("a truncated or malformed QCOW2", "Input/output error",
                Shell.run("cp", truncated.toString(), m.at("incoming/truncated:1")).failed().err());
        Path outside = dir.resolve("outside.qcow2");
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "/etc/passwd", outside.toString(), "1M").ok();
        Readme.assertRowSays("an external data file, or a backing file outside the store", "Operation not permitted",
                Shell.run("cp", outside.toString(), m.at("incoming/outside:1")).failed().err());
        Path empty = Files.createFile(dir.resolve("empty"));
        Readme.assertRowSays("an empty file", "Invalid argument", Shell.run("cp", empty.toString(), m.at("incoming/empty:1")).failed().err());
        Readme.assertRowSays("a new entry anywhere outside `incoming/`", "Read-only file system",
                Shell.run("cp", image.toString(), m.at("tags/new")).failed().err());
        Shell.run("cp", image.toString(), m.at("incoming/placed:1")).ok();
        Readme.assertRowSays("writing to a placed image", "Operation not permitted",
                Shell.sh("echo x >> '" + m.at("tags/placed/1") + "'").failed().err());
    }

    /** ls --all, gc --dry-run, prune --dry-run and hold: the reasons they print. */
    private static void keepReasons(MountedStore m, String hex) throws Exception {
        Path orphan = m.blob("ef".repeat(32)); // a blob file nothing references, as a crash can leave
        Files.write(orphan, new byte[] {1});
        // an opener that looks like QEMU to /proc/PID/cmdline, holding the image's blob and the orphan
        Process qemu = new ProcessBuilder("bash", "-c", "exec 3<'" + m.blob(hex) + "' 4<'" + orphan
                + "'; exec -a qemu-system-x86_64 sleep 60").start();
        try {
            Eventually.within(Duration.ofSeconds(10), "the opener holds the blob and runs as qemu-system-x86_64",
                    () -> Shell.run("cat", "/proc/" + qemu.pid() + "/cmdline").out().startsWith("qemu-system-x86_64"));
            Readme.assertQuotes("`vimgfs gc --dry-run` says `blobs/sha256/<hex> kept: open by pid 4242 (qemu-system-x86_64 …)`",
                    "blobs/sha256/<hex> kept: open by pid 4242 (qemu-system-x86_64 …)", Shell.vimgfs(m.store, "gc", "--dry-run").ok().out());
            Shell.vimgfs(m.store, "rm", "app:1").ok();
            Readme.assertQuotes("another process has its blob open (`in use by pid 4242 (qemu-system-x86_64 …)`)",
                    "in use by pid 4242 (qemu-system-x86_64 …)", Shell.vimgfs(m.store, "ls", "--all").ok().out());
        } finally {
            qemu.destroyForcibly().waitFor();
        }
        Shell.vimgfs(m.store, "hold", "add", "placed:1", "--why", "golden image").ok();
        Readme.assertQuotes("a hold names it (`held: golden image`)", "held: golden image",
                Shell.vimgfs(m.store, "ls", "--all").ok().out());
        for (int i = 1; i <= 3; i++) {
            Path file = Fixtures.small(m.store.getParent(), "recent" + i, 4096, 100 + i);
            Shell.vimgfs(m.store, "import", file.toString(), "app:" + i).ok();
        }
        Readme.assertQuotes("(`keep … 2nd most recent of app`)", "keep … 2nd most recent of app",
                Shell.vimgfs(m.store, "prune", "--dry-run", "--keep-recent", "2").ok().out());
    }

    private static void daemonThatDoesNotAnswer(MountedStore m) {
        long pid = m.daemonPid();
        Shell.run("kill", "-STOP", Long.toString(pid)).ok();
        try {
            Readme.assertQuotes("\"DAEMON DOES NOT ANSWER … stopped (SIGSTOP or a debugger: kill -CONT PID)\"",
                    "DAEMON DOES NOT ANSWER … stopped (SIGSTOP or a debugger: kill -CONT PID)",
                    Shell.vimgfsRaw("status", "--timeout", "1", m.mountpoint.toString()).out());
        } finally {
            Shell.run("kill", "-CONT", Long.toString(pid)).ok();
        }
    }

    /**
     * A registry that refuses in each way, in Python: unlike the JDK's HttpServer it answers a TLS
     * hello with a 400 and closes, as registries do (the JDK's stays silent and the handshake waits).
     */
    private static final String FAKE_REGISTRY = String.join("\n",
            "import http.server, sys",
            "class H(http.server.BaseHTTPRequestHandler):",
            "    protocol_version = 'HTTP/1.1'",
            "    def log_message(self, *args): pass",
            "    def do_GET(self):",
            "        locked = '/locked/' in self.path",
            "        self.send_response(401 if locked else 200 if self.path == '/v2/' else 404)",
            "        if locked: self.send_header('WWW-Authenticate', 'Basic realm=\"test\"')",
            "        self.send_header('Content-Length', '0')",
            "        self.end_headers()",
            "server = http.server.HTTPServer(('127.0.0.1', 0), H)",
            "print(server.server_address[1], flush=True)",
            "server.serve_forever()", "");

    /** pull's one-line failures. */
    private static void registryMessages(Path store) throws IOException {
        Path script = Files.writeString(store.getParent().resolve("registry.py"), FAKE_REGISTRY);
        Process server = new ProcessBuilder("python3", script.toString()).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            String registry = "127.0.0.1:" + new java.io.BufferedReader(new java.io.InputStreamReader(server.getInputStream())).readLine();
            Map<String, String> noCredentials = Map.of("REGISTRY_AUTH_FILE", store.getParent().resolve("auth.json").toString(),
                    "XDG_RUNTIME_DIR", store.getParent().toString());
            Readme.assertQuotes("\"authentication required: log in with 'podman login HOST' or pass --creds USER:PASS or --authfile FILE\"",
                    "authentication required: log in with 'podman login HOST' or pass --creds USER:PASS or --authfile FILE",
                    pull(store, noCredentials, "--tls-verify=false", "docker://" + registry + "/vm/locked/disk:1").err());
            Readme.assertQuotes("\"manifest unknown\"", "manifest unknown",
                    pull(store, noCredentials, "--tls-verify=false", "docker://" + registry + "/vm/disk:1").err());
            Readme.assertQuotes("\"TLS failure … pass --tls-verify=false\"", "TLS failure … pass --tls-verify=false",
                    pull(store, noCredentials, "https://" + registry + "/disk.qcow2", "url:1").err());
        } finally {
            server.destroyForcibly();
        }
    }

    private static Shell.Result pull(Path store, Map<String, String> env, String... args) {
        List<String> command = new java.util.ArrayList<>(List.of(Shell.java(), "-jar", Shell.jar().toString(),
                "--store", store.toString(), "pull"));
        command.addAll(List.of(args));
        return Shell.run(Duration.ofSeconds(60), env, command).failed();
    }

    /** While the daemon is gone and once it is unmounted: what a path under the mount answers. */
    private static void restart(MountedStore m) {
        String context = "a path under the mount answers \"Transport endpoint is not connected\" (or, once unmounted,"
                + " \"No such file or directory\")";
        long pid = m.daemonPid();
        Shell.run("kill", "-KILL", Long.toString(pid)).ok();
        MountedStore.awaitExit(pid);
        Readme.assertQuotes(context, "Transport endpoint is not connected", Shell.run("ls", m.at("tags")).failed().err());
        Shell.run("fusermount", "-u", m.mountpoint.toString()).ok();
        Readme.assertQuotes(context, "No such file or directory", Shell.run("ls", m.at("tags")).failed().err());
    }
}
