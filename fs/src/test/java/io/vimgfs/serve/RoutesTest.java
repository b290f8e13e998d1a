package io.vimgfs.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vimgfs.serve.Routes.Kind;
import io.vimgfs.serve.Routes.Route;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** What a request path means, and what never reaches the store. */
class RoutesTest {
    @Test
    void nestedRepositoriesAndEveryRouteAreTold() throws Exception {
        assertEquals(new Route(Kind.BASE, "", ""), Routes.match("/v2/").orElseThrow());
        assertEquals(new Route(Kind.CATALOG, "", ""), Routes.match("/v2/_catalog").orElseThrow());
        assertEquals(new Route(Kind.TAGS, "a/b/c", ""), Routes.match("/v2/a/b/c/tags/list").orElseThrow());
        assertEquals(new Route(Kind.MANIFEST, "vm/cirros", "0.6.2"), Routes.match("/v2/vm/cirros/manifests/0.6.2").orElseThrow());
        assertEquals(new Route(Kind.UPLOADS, "vm/x", ""), Routes.match("/v2/vm/x/blobs/uploads/").orElseThrow());
        assertEquals(new Route(Kind.UPLOAD, "vm/x", "id-1"), Routes.match("/v2/vm/x/blobs/uploads/id-1").orElseThrow());
        assertEquals(new Route(Kind.BLOB, "vm/x", "sha256:ab"), Routes.match("/v2/vm/x/blobs/sha256:ab").orElseThrow());
        assertEquals(new Route(Kind.REFERRERS, "vm/x", "sha256:ab"), Routes.match("/v2/vm/x/referrers/sha256:ab").orElseThrow());
        assertEquals(new Route(Kind.MANIFEST, "blobs/uploads", "1"), Routes.match("/v2/blobs/uploads/manifests/1").orElseThrow(),
                "a repository may be named like a route");
        assertEquals(Optional.empty(), Routes.match("/v1/x/manifests/1"));
        assertEquals(Optional.empty(), Routes.match("/v2/x/manifests/"));
    }

    @Test
    void hostileNamesTagsAndDigestsAreRefusedWithTheirCodes() {
        for (String path : new String[] {"/v2/../etc/tags/list", "/v2/a/../b/tags/list", "/v2/a%2F..%2Fb/tags/list",
            "/v2/UPPER/tags/list", "/v2/a//b/tags/list", "/v2/" + "x".repeat(256) + "/tags/list", "/v2/-a/tags/list"}) {
            RegistryError e = assertThrows(RegistryError.class, () -> Routes.match(path), path);
            assertEquals(RegistryError.Code.NAME_INVALID, e.code, path);
        }
        assertEquals(RegistryError.Code.TAG_INVALID, assertThrows(RegistryError.class, () -> Routes.checkReference(".hidden")).code);
        assertEquals(RegistryError.Code.TAG_INVALID, assertThrows(RegistryError.class,
                () -> Routes.checkReference("t".repeat(129))).code);
        for (String digest : new String[] {"sha256:abc", "sha512:" + "0".repeat(128), "sha256:" + "A".repeat(64), "md5:00"}) {
            assertEquals(RegistryError.Code.DIGEST_INVALID, assertThrows(RegistryError.class, () -> Routes.digest(digest)).code, digest);
        }
        assertTrue(Routes.isDigest("sha256:" + "0".repeat(64)));
    }
}
