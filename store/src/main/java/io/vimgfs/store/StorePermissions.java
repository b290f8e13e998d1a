package io.vimgfs.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.util.List;
import java.util.Set;

/**
 * The store's one permission policy (SPEC: the hypervisor's user must reach the blobs). The
 * directories on the way to a blob — the store, {@code blobs/}, {@code blobs/sha256/} — follow
 * the {@link StoreAudience}; blob files are 0444 always, so only those directories decide who
 * reads; {@code .vimgfs/} (staging files, lock, logs) is 0700 always and its files 0600.
 */
final class StorePermissions {
    static final Set<PosixFilePermission> BLOB = PosixFilePermissions.fromString("r--r--r--");
    static final Set<PosixFilePermission> PRIVATE_FILE = PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> PRIVATE_DIR = PosixFilePermissions.fromString("rwx------");
    private static final Set<PosixFilePermission> GROUP_DIR = PosixFilePermissions.fromString("rwxr-x---");
    private static final Set<PosixFilePermission> EVERYONE_DIR = PosixFilePermissions.fromString("rwxr-xr-x");

    private final GroupPrincipal group;
    private final Set<PosixFilePermission> directoryMode;

    private StorePermissions(GroupPrincipal group, Set<PosixFilePermission> directoryMode) {
        this.group = group;
        this.directoryMode = directoryMode;
    }

    /** The policy of an audience; a group is looked up now, so an unknown one fails before anything is made. */
    static StorePermissions of(Path root, StoreAudience audience) throws IOException {
        if (audience instanceof StoreAudience.Group named) {
            return new StorePermissions(lookup(root, named.name()), GROUP_DIR);
        }
        return new StorePermissions(null, audience instanceof StoreAudience.Everyone ? EVERYONE_DIR : PRIVATE_DIR);
    }

    /** For creating a staging or log file 0600 from the start (the umask can only take bits away). */
    static FileAttribute<Set<PosixFilePermission>> privateFile() {
        return PosixFilePermissions.asFileAttribute(PRIVATE_FILE);
    }

    /** For creating a directory 0700 from the start. */
    static FileAttribute<Set<PosixFilePermission>> privateDirectory() {
        return PosixFilePermissions.asFileAttribute(PRIVATE_DIR);
    }

    /** Gives the directories on the way to blobs the audience's modes (and group); narrows as well as widens. */
    void apply(BlobFiles files) throws IOException {
        for (Path dir : List.of(files.root(), files.root().resolve("blobs"), files.blobDir())) {
            PosixFileAttributeView view = Files.getFileAttributeView(dir, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
            if (group != null) {
                view.setGroup(group); // before the mode: until then the old group has no access
            }
            view.setPermissions(directoryMode);
        }
        restrictWorkDir(files);
    }

    /** {@code .vimgfs/} and its staging directory are root's alone whatever the audience. */
    static void restrictWorkDir(BlobFiles files) throws IOException {
        for (Path dir : List.of(files.workDir(), files.stagingDir())) {
            if (!Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS).equals(PRIVATE_DIR)) {
                Files.setPosixFilePermissions(dir, PRIVATE_DIR);
            }
        }
    }

    private static GroupPrincipal lookup(Path root, String name) throws IOException {
        try {
            return root.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByGroupName(name);
        } catch (UserPrincipalNotFoundException e) {
            throw new IOException("no group '" + name + "' on this host (-o group=" + name + ")", e);
        }
    }
}
