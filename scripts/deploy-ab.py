#!/usr/bin/env python3
"""Deploys and locks one at a time on a copy of a kept 10,000-application repo, for two builds side by side.

The `packs` bench times 200 deploys and 200 locks once per run; a build's tail is easier to compare over more
samples and rounds, with the builds taking turns on the same machine. Each round copies the kept repo (made by the
bench with RAILYARD_BENCH_PACKS_KEEP), clones it as the local remote, starts the given railyard-api on 127.0.0.1,
waits for its history index and a few overviews, then times N deploys of env-2 to the last release, N locks on
env-9 and N deploys back, and reads the writer's own time per commit from its `committed batch` log lines:

    cargo build --release --bins
    python3 scripts/deploy-ab.py --keep /work/bench-keep/10000x10x20.git --rounds 4 \\
        old=/path/to/old/railyard-api new=target/release/railyard-api

With PERF=1 in the environment, each round records the scheduler (`perf sched record -g`, as root) while it
times, into <work>/<label>-<round>/sched.data, for scripts/writer-waits.py.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import time


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def round_of(label, binary, keep, work, n, port, r):
    d = os.path.join(work, f"{label}-{r}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    repo, remote = f"{d}/repo.git", f"{d}/remote.git"
    subprocess.run(["cp", "-a", keep, repo], check=True)
    subprocess.run(["git", "clone", "--bare", "-q", repo, remote], check=True)
    head = subprocess.run(["git", "-C", repo, "rev-parse", "main"], capture_output=True, text=True, check=True)
    subprocess.run(["git", "-C", repo, "update-ref", "refs/railyard/exported/main", head.stdout.strip()], check=True)
    subprocess.run(["sync"], check=True)
    log = open(f"{d}/api.log", "w")
    args = [binary, "--listen", f"127.0.0.1:{port}", "--log-format", "json", "--repo-dir", repo, "--git-url", remote]
    server = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        c = None
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port)
                c.request("GET", "/api/history?limit=1")
                reply = c.getresponse()
                reply.read()
                if reply.status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{label}: the server did not answer; see {d}/api.log")
        for _ in range(5):
            c.request("GET", "/api/overview")
            c.getresponse().read()
        time.sleep(5)
        perf = None
        if os.environ.get("PERF"):
            perf = subprocess.Popen(["perf", "sched", "record", "-g", "-o", f"{d}/sched.data"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)

        def timed(method, path, body):
            started = time.perf_counter()
            c.request(method, path, json.dumps(body), {"Content-Type": "application/json"})
            reply = c.getresponse()
            text = reply.read()
            if reply.status != 200:
                raise SystemExit(f"{label}: {method} {path}: {reply.status} {text[:200]!r}")
            return (time.perf_counter() - started) * 1000

        deploy = "/api/environments/env-2/applications/app-{:05d}/deploy"
        phases = {
            "deploy": [timed("PUT", deploy.format(i), {"version": 20, "lockBehavior": "fail"}) for i in range(n)],
            "lock": [timed("PUT", f"/api/environments/env-9/locks/ab-{i}", {"message": "ab"}) for i in range(n)],
            "deploy back": [timed("PUT", deploy.format(i), {"version": 19, "lockBehavior": "fail"}) for i in range(n)],
        }
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    writer = []
    for line in open(f"{d}/api.log"):
        try:
            fields = json.loads(line)["fields"]
        except (ValueError, KeyError):
            continue
        if fields.get("message") == "committed batch":
            writer.append(fields["ms"])
    shown = "  ".join(f"{k} p50 {pct(v, .5):.2f} p99 {pct(v, .99):.2f}" for k, v in phases.items())
    print(f"{label} round {r}: {shown}  writer p50 {pct(writer, .5)} p99 {pct(writer, .99)} ms", flush=True)
    if not os.environ.get("PERF"):
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", required=True, help="a kept repo of the packs bench (…/10000x10x20.git)")
    ap.add_argument("--work", default="/tmp/railyard-deploy-ab", help="where each round's copies go")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("-n", type=int, default=400, help="requests per phase")
    ap.add_argument("--port", type=int, default=8098)
    ap.add_argument("builds", nargs="+", help="label=path/to/railyard-api, taking turns in each round")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.builds]
    for r in range(a.rounds):
        for label, binary in builds:
            round_of(label, os.path.abspath(binary), a.keep, a.work, a.n, a.port, r)


if __name__ == "__main__":
    main()
