package io.vimgfs.cli;

import io.vimgfs.store.registry.CredentialLookup;
import io.vimgfs.store.registry.Credentials;
import io.vimgfs.store.registry.RegistryClient;
import java.nio.file.Path;
import java.util.Optional;
import picocli.CommandLine.Option;

/** The flags pull and push share, spelled as skopeo spells them. */
final class RegistryOptions {
    @Option(names = "--tls-verify", arity = "0..1", defaultValue = "true", fallbackValue = "true", paramLabel = "BOOL",
            description = "Verify TLS certificates (default true); false also allows plain HTTP, for lab registries.")
    boolean tlsVerify;

    @Option(names = "--authfile", paramLabel = "FILE",
            description = "Credentials file (as podman login writes; default $REGISTRY_AUTH_FILE, "
                    + "$XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json).")
    Path authFile;

    @Option(names = "--creds", paramLabel = "USER[:PASS]", description = "Credentials for the registry.")
    String creds;

    @Option(names = {"-q", "--quiet"}, description = "No progress bar and no result line.")
    boolean quiet;

    RegistryClient.Options client() {
        return RegistryClient.Options.defaults(tlsVerify);
    }

    CredentialLookup credentials() {
        return CredentialLookup.forProcess(Optional.ofNullable(creds).map(Credentials::parse), Optional.ofNullable(authFile));
    }

    /** A progress bar on a terminal unless --quiet. */
    TransferBar progress() {
        return new TransferBar(quiet);
    }
}
