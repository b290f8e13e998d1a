package io.vimgfs.store.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.store.Digest;
import io.vimgfs.store.InvalidNameException;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class RegistryReferenceTest {
    private static final String HEX = "a".repeat(64);

    @Test
    void hostPortRepositoryAndTag() throws Exception {
        RegistryReference r = RegistryReference.parse("docker://127.0.0.1:5000/containerdisks/fedora:40");
        assertEquals("127.0.0.1:5000", r.registry());
        assertEquals("containerdisks/fedora", r.repository());
        assertEquals(Optional.of("40"), r.tag());
        assertEquals("40", r.manifestReference());
        assertEquals("127.0.0.1:5000/containerdisks/fedora:40", r.defaultName().orElseThrow().toString());
        assertEquals("docker://127.0.0.1:5000/containerdisks/fedora:40", r.toString());
    }

    @Test
    void digestReferencesHaveNoDefaultName() throws Exception {
        RegistryReference r = RegistryReference.parse("docker://quay.io/containerdisks/fedora@sha256:" + HEX);
        assertEquals(Optional.of(new Digest(HEX)), r.digest());
        assertEquals("sha256:" + HEX, r.manifestReference());
        assertTrue(r.defaultName().isEmpty());
    }

    @Test
    void noTagMeansLatestAndNoHostMeansDockerHub() throws Exception {
        RegistryReference r = RegistryReference.parse("docker://fedora");
        assertEquals("docker.io", r.registry());
        assertEquals("library/fedora", r.repository());
        assertEquals("registry-1.docker.io", r.apiHost());
        assertEquals(Optional.of("latest"), r.tag());
        assertEquals("localhost", RegistryReference.parse("docker://localhost/a/b").registry());
    }

    @Test
    void malformedReferencesSayWhy() {
        InvalidNameException noScheme = assertThrows(InvalidNameException.class, () -> RegistryReference.parse("quay.io/a:1"));
        assertTrue(noScheme.getMessage().contains("docker://"), noScheme.getMessage());
        assertThrows(InvalidNameException.class, () -> RegistryReference.parse("docker://quay.io/Upper/case"));
        assertThrows(InvalidNameException.class, () -> RegistryReference.parse("docker://quay.io/a:-bad"));
        assertThrows(InvalidNameException.class, () -> RegistryReference.parse("docker://quay.io/a:1@sha256:" + HEX));
        assertThrows(InvalidNameException.class, () -> RegistryReference.parse("docker://quay.io/a@sha512:" + HEX));
        assertThrows(InvalidNameException.class, () -> RegistryReference.parse("docker://quay.io/a/../b"));
        assertThrows(InvalidNameException.class, () -> RegistryReference.parse("docker://quay.io/"));
    }
}
