#!/usr/bin/env python3
"""Name churn for scripts/bench: W worker processes add names for SECONDS, then remove them all.

  churn.py vimgfs MOUNTPOINT PREFIX WORKERS SECONDS
      add:    write a tiny distinct file to MOUNTPOINT/incoming/churn:<name> (placed on close)
      remove: unlink MOUNTPOINT/tags/churn/<name> (its image's last name)
  churn.py vimgfs-same MOUNTPOINT PREFIX WORKERS SECONDS
      add:    write the bytes of an image already stored (as churn:<PREFIX>base, placed first and
              removed last, untimed) to MOUNTPOINT/incoming/churn:<name>: a name, no new bytes
      remove: unlink MOUNTPOINT/tags/churn/<name> (the image keeps its other names)
  churn.py plain DIR PREFIX WORKERS SECONDS
      add:    create DIR/churn-<name> with the same bytes; remove: unlink it
  churn.py disk DIR PREFIX 1 SECONDS
      what the disk under DIR allows, one thread, for SECONDS each: append 512 bytes to one file
      and fsync it (a journal frame's cost), then create a file, write 512 bytes, fsync it and
      fsync DIR (a new blob's); prints appends_per_s and creates_per_s

Prints one JSON object: adds, add_seconds, adds_per_s, removes, remove_seconds, removes_per_s,
errors (with the first error message). Only the standard library; no process is forked per
operation, so the rates are the filesystem's, not fork's.
"""
import json
import multiprocessing as mp
import os
import sys
import time


def paths(mode, root, name):
    if mode.startswith("vimgfs"):
        return os.path.join(root, "incoming", "churn:" + name), os.path.join(root, "tags", "churn", name)
    p = os.path.join(root, "churn-" + name)
    return p, p


def content(mode, prefix, name):
    if mode == "vimgfs-same":
        return ("vimgfs bench churn, one image for every name %s\n" % prefix).encode().ljust(512, b".")
    return ("vimgfs bench churn %s %d %.9f\n" % (name, os.getpid(), time.time())).encode().ljust(512, b".")


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def worker(mode, root, prefix, index, seconds, barrier, out):
    added, errors, first_error = [], 0, ""
    barrier.wait()
    start = time.monotonic()
    deadline = start + seconds
    n = 0
    while time.monotonic() < deadline:
        name = "%sw%d-%d" % (prefix, index, n)
        n += 1
        add_path, _ = paths(mode, root, name)
        try:
            write(add_path, content(mode, prefix, name))
            added.append(name)
        except OSError as e:
            errors += 1
            first_error = first_error or "add %s: %s" % (add_path, e)
    add_end = time.monotonic()
    barrier.wait()  # every worker has stopped adding before any removes
    remove_start = time.monotonic()
    removed = 0
    for name in added:
        _, remove_path = paths(mode, root, name)
        try:
            os.unlink(remove_path)
            removed += 1
        except OSError as e:
            errors += 1
            first_error = first_error or "remove %s: %s" % (remove_path, e)
    remove_end = time.monotonic()
    out.put((len(added), add_end - start, removed, remove_start, remove_end, errors, first_error))


def disk(root, prefix, seconds):
    data = b"." * 511 + b"\n"
    log = os.path.join(root, "fsync-" + prefix + "log")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    appends, start = 0, time.monotonic()
    try:
        while time.monotonic() < start + seconds:
            os.write(fd, data)
            os.fsync(fd)
            appends += 1
        append_seconds = time.monotonic() - start
    finally:
        os.close(fd)
        os.unlink(log)
    dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    made, start = [], time.monotonic()
    try:
        while time.monotonic() < start + seconds:
            path = os.path.join(root, "fsync-%s%d" % (prefix, len(made)))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.fsync(dfd)
            made.append(path)
        create_seconds = time.monotonic() - start
    finally:
        os.close(dfd)
        for path in made:
            os.unlink(path)
    print(json.dumps({"appends_per_s": appends / append_seconds, "creates_per_s": len(made) / create_seconds}))


def main():
    mode, root, prefix, workers, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    if mode == "disk":
        return disk(root, prefix, seconds)
    base = prefix + "base"
    if mode == "vimgfs-same":
        write(paths(mode, root, base)[0], content(mode, prefix, base))
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers)
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(mode, root, prefix, i, seconds, barrier, out)) for i in range(workers)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    if mode == "vimgfs-same":
        os.unlink(paths(mode, root, base)[1])
    adds = sum(r[0] for r in results)
    add_seconds = max(r[1] for r in results)
    removes = sum(r[2] for r in results)
    remove_seconds = max(r[4] for r in results) - min(r[3] for r in results)
    errors = sum(r[5] for r in results)
    first = next((r[6] for r in results if r[6]), "")
    print(json.dumps({
        "adds": adds, "add_seconds": add_seconds, "adds_per_s": adds / add_seconds if add_seconds else 0,
        "removes": removes, "remove_seconds": remove_seconds,
        "removes_per_s": removes / remove_seconds if remove_seconds > 0 else 0,
        "errors": errors, "first_error": first}))


if __name__ == "__main__":
    main()
