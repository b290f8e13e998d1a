package io.vimgfs.store;

import java.util.Objects;

/**
 * Who may read a store's images from its directory, following the mount's audience: without
 * {@code allow_other} only root ({@link Private}); with it, a group such as {@code libvirt-qemu}
 * ({@link Group}) or every local user ({@link Everyone}). Never anyone but root may write.
 */
public sealed interface StoreAudience {

    /** Root alone: the store directory is 0700. */
    record Private() implements StoreAudience {
    }

    /** Root and one group (the hypervisor's): the store, blobs/ and blobs/sha256 are 0750 in that group. */
    record Group(String name) implements StoreAudience {
        public Group {
            Objects.requireNonNull(name);
            if (name.isBlank()) {
                throw new IllegalArgumentException("a group name is needed: -o group=NAME");
            }
        }
    }

    /** Every local user may read the images: 0755. */
    record Everyone() implements StoreAudience {
    }
}
