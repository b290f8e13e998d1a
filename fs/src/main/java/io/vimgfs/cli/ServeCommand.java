package io.vimgfs.cli;

import io.vimgfs.serve.RegistryServer;
import io.vimgfs.store.ImageStore;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs serve}: the store as an OCI registry, for peer hosts and any OCI client. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve the store as an OCI registry (the distribution API's /v2/ routes).",
            "Pulls of every stored image by tag and digest; pushes of vimgfs disk artifacts (what",
            "vimgfs push and skopeo copy of one send), placed and probed as a pull places them.",
            "Runs beside a mount of the same store or without one; stops on SIGTERM or SIGINT."})
final class ServeCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Option(names = "--listen", paramLabel = "[HOST:]PORT", defaultValue = "127.0.0.1:5000",
            description = "Address to listen on (default 127.0.0.1:5000: loopback only, unless you name another).")
    String listen;

    @Option(names = "--read-only", description = "Refuse every push and delete.")
    boolean readOnly;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "PEM certificate chain: serve HTTPS.")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "Its unencrypted PKCS#8 PEM key.")
    Path tlsKey;

    @Option(names = "--htpasswd", paramLabel = "FILE",
            description = "Require HTTP Basic auth of these bcrypt users (htpasswd -B); needs TLS off loopback.")
    Path htpasswd;

    @Option(names = "--anonymous-read", description = "With --htpasswd: let anyone pull; pushes still need a user.")
    boolean anonymousRead;

    @Option(names = "--max-connections", paramLabel = "N", defaultValue = "256",
            description = "Connections accepted at once (default 256); more wait in the kernel's backlog.")
    int maxConnections;

    @Option(names = "--max-uploads", paramLabel = "N", defaultValue = "64",
            description = "Blob uploads in progress or awaiting their manifest (default 64).")
    int maxUploads;

    @Option(names = "--max-upload-bytes", paramLabel = "SIZE",
            description = "Bytes those uploads may hold together (default: up to 1 GiB short of a full disk).")
    String maxUploadBytes;

    @Override
    public Integer call() throws Exception {
        RegistryServer.Options options = options();
        CountDownLatch stopped = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        // The JVM halts once its hooks return: this one waits until the server and the store are closed.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopped.countDown();
            try {
                closed.await(15, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "vimgfs-serve-stop"));
        try (ImageStore store = main.openStore(); RegistryServer server = RegistryServer.start(store, options)) {
            String scheme = tlsCert != null ? "https" : "http";
            PrintWriter out = spec.commandLine().getOut();
            out.printf("vimgfs serve: %s://%s:%d/v2/ (store %s, %s)%n", scheme, hostText(options.listen()),
                    server.port(), store.root(), readOnly ? "read-only" : "pushes accepted");
            out.flush();
            stopped.await();
        } finally {
            closed.countDown();
        }
        return 0;
    }

    private RegistryServer.Options options() {
        if ((tlsCert == null) != (tlsKey == null)) {
            throw usage("--tls-cert and --tls-key go together");
        }
        if (anonymousRead && htpasswd == null) {
            throw usage("--anonymous-read only means something with --htpasswd");
        }
        InetSocketAddress address = address(listen);
        if (htpasswd != null && tlsCert == null && !address.getAddress().isLoopbackAddress()) {
            throw usage("--htpasswd off loopback needs --tls-cert and --tls-key: Basic auth sends passwords in the clear");
        }
        long bytes = Long.MAX_VALUE;
        if (maxUploadBytes != null) {
            try {
                bytes = ByteSizes.parse(maxUploadBytes);
            } catch (IllegalArgumentException e) {
                throw usage("--max-upload-bytes " + e.getMessage());
            }
        }
        if (maxConnections < 1 || maxUploads < 1) {
            throw usage("--max-connections and --max-uploads are at least 1");
        }
        return new RegistryServer.Options(address, readOnly, Optional.ofNullable(tlsCert), Optional.ofNullable(tlsKey),
                Optional.ofNullable(htpasswd), anonymousRead, maxConnections, maxUploads, bytes);
    }

    private InetSocketAddress address(String text) {
        int colon = text.lastIndexOf(':');
        String host = colon < 0 ? "127.0.0.1" : text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(text.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw usage("--listen " + text + ": the port is not a number");
        }
        if (port < 0 || port > 65535) {
            throw usage("--listen " + text + ": the port is 0 to 65535");
        }
        try {
            return new InetSocketAddress(InetAddress.getByName(host.isEmpty() ? "0.0.0.0" : host), port);
        } catch (UnknownHostException e) {
            throw usage("--listen " + text + ": unknown host " + host);
        }
    }

    private static String hostText(InetSocketAddress address) {
        String host = address.getAddress().getHostAddress();
        return host.contains(":") ? "[" + host + "]" : host;
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }
}
