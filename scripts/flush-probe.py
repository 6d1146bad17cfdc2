#!/usr/bin/env python3
"""How long the writer's two ways of making a batch durable take on this machine's filesystem.

A batch writes a pack and its index, renames them into place, then moves a ref (a lock file renamed). Railyard
flushes with one `syncfs` after the pack and one after the ref (`writer::sync_to_disk`). The alternative is to fsync
exactly what the batch wrote: each file before its rename, then the directory after. This writes the same files
both ways, idle and beside a thread that keeps 16 MiB of other files dirty (what roll-ups and pushes do to the
writer's filesystem), and prints the time per batch.

    python3 scripts/flush-probe.py [DIR] [BATCHES]

DIR must be on the filesystem to measure (default: a temporary folder under the current directory, not /tmp, which
may be in memory); it is removed afterwards. Figures: docs/benchmarks.md (section "Flushing only the batch's files").
"""
import ctypes
import os
import shutil
import sys
import tempfile
import threading
import time

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    finally:
        os.close(fd)


def write(path, data, sync):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def batch(d, i, targeted):
    """One batch: pack and index (30 KB each), renamed; a flush; the ref; a flush."""
    for ext in ("pack", "idx"):
        tmp = os.path.join(d, f"tmp_{i}.{ext}")
        write(tmp, os.urandom(30_000), targeted)
        os.rename(tmp, os.path.join(d, f"pack-{i}.{ext}"))
    fsync_path(d) if targeted else syncfs(d)
    lock = os.path.join(d, "main.lock")
    write(lock, b"%040x\n" % i, targeted)
    os.rename(lock, os.path.join(d, "main"))
    fsync_path(d) if targeted else syncfs(d)


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else None
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    d = tempfile.mkdtemp(prefix="flush-probe-", dir=base or os.getcwd())
    stop = threading.Event()

    def dirty():
        n = 0
        while not stop.is_set():
            write(os.path.join(d, f"other-{n % 4}"), os.urandom(4 << 20), False)
            n += 1
            time.sleep(0.05)

    print("| load | flush | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---|---|---|")
    try:
        for load in ("idle", "16 MiB of other files kept dirty"):
            if load != "idle":
                threading.Thread(target=dirty, daemon=True).start()
            for rnd in range(2):
                for name, targeted in (("fsync of the batch's files and folder", True), ("syncfs", False)):
                    times = []
                    for i in range(batches):
                        started = time.perf_counter()
                        batch(d, rnd * batches + i, targeted)
                        times.append((time.perf_counter() - started) * 1000)
                        time.sleep(0.01)
                    times.sort()
                    q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
                    print(f"| {load} | {name} | {q(0.5):.2f} | {q(0.9):.2f} | {q(0.99):.2f} |", flush=True)
    finally:
        stop.set()
        time.sleep(0.1)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
