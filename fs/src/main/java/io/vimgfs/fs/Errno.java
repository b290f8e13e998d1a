package io.vimgfs.fs;

/** The errno values vimgfs answers with (Linux numbers); the FUSE adapter returns them negated. */
enum Errno {
    EPERM(1), ENOENT(2), EIO(5), EBADF(9), EACCES(13), EBUSY(16), EEXIST(17), EXDEV(18), ENOTDIR(20),
    EISDIR(21), EINVAL(22), ENOSPC(28), EROFS(30), ERANGE(34), ENOSYS(38), ENOTEMPTY(39), ENODATA(61),
    EOPNOTSUPP(95), EDQUOT(122);

    private final int value;

    Errno(int value) {
        this.value = value;
    }

    int value() {
        return value;
    }
}
