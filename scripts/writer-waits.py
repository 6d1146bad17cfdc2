#!/usr/bin/env python3
"""Where Railyard's writer thread waits, from the kernel scheduler's trace.

Record the scheduler while requests run (as root; the writer thread is named `railyard-writer`), then read the
trace through `perf sched timehist`, which prints one line per time a thread ran, with how long it waited before
and the kernel stack where it stopped:

    perf sched record -g -o sched.data -- sleep 30        # while deploys run, e.g. the `packs` bench
    perf sched timehist -i sched.data --max-stack 30 | python3 scripts/writer-waits.py

Prints, per kind of wait, the writer's total time off the CPU (waiting, then waiting for a CPU), how many waits,
and how many were longer than 2 ms. `futex` includes the writer waiting for its next request.
"""

import collections
import sys

KINDS = [
    ("block discard (a freed file's blocks)", ("blkdev_issue_discard",)),
    ("flush of the filesystem (syncfs)", ("sync_filesystem", "jbd2")),
    ("lock in user space (futex)", ("futex",)),
    ("page fault behind the memory map's lock", ("lock_mm_and_find_vma",)),
    ("read of a file not in the page cache", ("folio_wait", "filemap_get_pages")),
    ("preempted", ("irqentry", "reschedule_ipi", "exit_to_user_mode")),
]


def kind(stack: str) -> str:
    for name, marks in KINDS:
        if any(m in stack for m in marks):
            return name
    return stack[:90]


def main() -> None:
    total: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    long: collections.Counter = collections.Counter()
    for line in sys.stdin:
        parts = line.split()
        if len(parts) < 7 or not parts[2].startswith("railyard-writer"):
            continue
        try:
            off_cpu = float(parts[3]) + float(parts[4])
        except ValueError:
            continue
        k = kind(" ".join(parts[6:]))
        total[k] += off_cpu
        count[k] += 1
        if off_cpu > 2.0:
            long[k] += 1
    if not total:
        sys.exit("no line of a thread named railyard-writer: was the trace recorded while Railyard wrote?")
    print(f"{'off CPU (ms)':>12} {'waits':>7} {'> 2 ms':>7}  kind")
    for k, ms in total.most_common(12):
        print(f"{ms:12.1f} {count[k]:7d} {long[k]:7d}  {k}")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # the reader (`head`) stopped early
        pass
