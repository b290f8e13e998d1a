package io.vimgfs.serve;

import io.vimgfs.store.ImageStore;
import io.vimgfs.store.RegistryContent;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Clock;
import java.util.Base64;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * {@code vimgfs serve}: the store as an OCI registry on one Jetty connector. The bounds a slow or
 * hostile client meets are here: {@link Options#maxConnections} connections, a pool of
 * {@link #THREADS} threads, 16 KiB of request headers, 30 s of idle time and a minimum request
 * data rate (a slowloris is dropped), plus what {@link Uploads} bounds.
 */
public final class RegistryServer implements AutoCloseable {
    static final int THREADS = 32;
    private static final long MIN_REQUEST_BYTES_PER_SECOND = 1024;

    /** How the server listens and whom it lets in. */
    public record Options(InetSocketAddress listen, boolean readOnly, Optional<Path> tlsCert, Optional<Path> tlsKey,
            Optional<Path> htpasswd, boolean anonymousRead, int maxConnections, int maxUploads, long maxUploadBytes) {
    }

    private final Server server;
    private final ServerConnector connector;
    private final Uploads uploads;
    private final ScheduledExecutorService expiry;

    private RegistryServer(Server server, ServerConnector connector, Uploads uploads, ScheduledExecutorService expiry) {
        this.server = server;
        this.connector = connector;
        this.uploads = uploads;
        this.expiry = expiry;
    }

    public static RegistryServer start(ImageStore store, Options options) throws Exception {
        Optional<BasicAuth> auth = options.htpasswd().isPresent()
                ? Optional.of(BasicAuth.read(options.htpasswd().get())) : Optional.empty();
        Uploads.Limits defaults = Uploads.Limits.defaults();
        Uploads uploads = new Uploads(store, new Uploads.Limits(options.maxUploads(), options.maxUploadBytes(),
                defaults.reserveBytes(), defaults.idle(), defaults.unclaimed()), Clock.systemUTC());
        RegistryContent content = new RegistryContent(store);
        RegistryHandler handler = new RegistryHandler(store, new Pulls(content, uploads),
                new Pushes(store, content, uploads),
                new RegistryHandler.Access(options.readOnly(), auth, options.anonymousRead()));

        QueuedThreadPool pool = new QueuedThreadPool(THREADS, 4);
        pool.setName("vimgfs-serve");
        pool.setDaemon(true);
        Server server = new Server(pool);
        HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setRequestHeaderSize(16 << 10);
        http.setMinRequestDataRate(MIN_REQUEST_BYTES_PER_SECOND);
        ServerConnector connector;
        if (options.tlsCert().isPresent()) {
            SecureRequestCustomizer secure = new SecureRequestCustomizer();
            secure.setSniHostCheck(false); // clients reach a host by address as often as by name
            http.addCustomizer(secure);
            SslContextFactory.Server tls = new SslContextFactory.Server();
            tls.setKeyStore(keyStore(options.tlsCert().get(), options.tlsKey().orElseThrow()));
            tls.setKeyStorePassword("");
            connector = new ServerConnector(server, new SslConnectionFactory(tls, HttpVersion.HTTP_1_1.asString()),
                    new HttpConnectionFactory(http));
        } else {
            connector = new ServerConnector(server, new HttpConnectionFactory(http));
        }
        connector.setHost(options.listen().getHostString());
        connector.setPort(options.listen().getPort());
        connector.setIdleTimeout(30_000);
        server.addConnector(connector);
        server.addBean(new NetworkConnectionLimit(options.maxConnections(), connector));
        server.setHandler(handler);
        server.setStopTimeout(5_000);
        server.start();

        ScheduledExecutorService expiry = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread thread = new Thread(r, "vimgfs-serve-expiry");
            thread.setDaemon(true);
            return thread;
        });
        expiry.scheduleWithFixedDelay(uploads::expire, 30, 30, TimeUnit.SECONDS);
        return new RegistryServer(server, connector, uploads, expiry);
    }

    public int port() {
        return connector.getLocalPort();
    }

    public void join() throws InterruptedException {
        server.join();
    }

    @Override
    public void close() throws Exception {
        expiry.shutdownNow();
        try {
            server.stop();
        } finally {
            uploads.close();
        }
    }

    /** A key store from PEM files: the certificate chain, and an unencrypted PKCS#8 key (what openssl 3 writes). */
    static KeyStore keyStore(Path certFile, Path keyFile) throws IOException, GeneralSecurityException {
        Certificate[] chain;
        try (InputStream in = Files.newInputStream(certFile)) {
            chain = CertificateFactory.getInstance("X.509").generateCertificates(in).toArray(new Certificate[0]);
        } catch (GeneralSecurityException e) {
            throw new IOException(certFile + ": not a PEM certificate: " + e.getMessage(), e);
        }
        if (chain.length == 0) {
            throw new IOException(certFile + ": no certificate in it");
        }
        String pem = Files.readString(keyFile, StandardCharsets.US_ASCII);
        int begin = pem.indexOf("-----BEGIN PRIVATE KEY-----");
        int end = pem.indexOf("-----END PRIVATE KEY-----");
        if (begin < 0 || end < begin) {
            throw new IOException(keyFile + ": not an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY); convert it with "
                    + "openssl pkcs8 -topk8 -nocrypt -in " + keyFile.getFileName());
        }
        byte[] der = Base64.getMimeDecoder().decode(pem.substring(begin + 27, end));
        PrivateKey key = null;
        for (String algorithm : new String[] {"RSA", "EC", "Ed25519"}) {
            try {
                key = KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
                break;
            } catch (GeneralSecurityException e) {
                // try the next algorithm
            }
        }
        if (key == null) {
            throw new IOException(keyFile + ": not an RSA, EC or Ed25519 key");
        }
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        store.setKeyEntry("vimgfs", key, new char[0], chain);
        return store;
    }
}
