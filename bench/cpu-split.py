#!/usr/bin/env python3
"""Where a race's CPU goes on this machine: server, load generator (and PostgreSQL) per request.

The sign-up bench's `ratio` compares two rates measured with the server and its load generator on
the same cores, so it follows what a request costs both of them, kernel included. This prints one
JSON line with the CPU time per request (user and system, in microseconds, the median of the
rounds) of:
- `noop`: `GET /v1/health`;
- `refused`: sign-ups for a full activity, every one refused from the memo;
- `accepted`: sign-ups for an activity with room for all, each accepted and committed.
With each, `server_write_bytes`: what the server caused to be written to storage per request
(`/proc/PID/io`; on SQLite its WAL and checkpoints, on PostgreSQL nothing: the database writes).

    cargo build --release -p unionpass-server -p unionpass-loadgen
    bench/cpu-split.py target/release/unionpass-server target/release/unionpass-loadgen \
        [--database postgres://postgres@127.0.0.1:5432/NAME] [--members 20000] [--rounds 3]

With `--database` (an empty database, created beforehand) the server runs on PostgreSQL and the
CPU of every `postgres` process is counted as `database`; on SQLite the database runs inside the
server. Linux only (it reads /proc). Times come in clock ticks (10 ms), so 20,000 requests give a
resolution of half a microsecond.
"""

import argparse
import atexit
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """(user, system) seconds of process `pid` so far, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def written(pid):
    """Bytes process `pid` caused to be written to storage so far (its WAL, its checkpoints)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def postgres_pids():
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(p))
            except OSError:
                pass
    return pids


def database_cpu(pids):
    """Total (user, system) seconds of the `postgres` processes in `pids` still running."""
    out = {}
    for p in pids:
        c = proc_cpu(p)
        if c is not None:
            out[p] = c
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("loadgen")
    ap.add_argument("--database")
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=256)
    a = ap.parse_args()
    srv, lg = os.path.realpath(a.server), os.path.realpath(a.loadgen)
    work = tempfile.mkdtemp(prefix="cpu-split-")
    # the store, its WAL (hundreds of MB after the accepted rounds) and the tokens, also on exit
    atexit.register(shutil.rmtree, work, True)
    db = ["--database", a.database] if a.database else ["--db", f"{work}/db.sqlite"]

    def cli(*args):
        return subprocess.run([srv, *args, *db], check=True, capture_output=True, text=True).stdout

    def at(**delta):
        t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(**delta)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    def activity(seats):
        return json.loads(cli(
            "activity", "create", "--title-zh", "运动会", "--title-en", "Sports day",
            "--category", "sports", "--place", "体育中心", "--starts-at", at(days=3),
            "--ends-at", at(days=3, hours=6), "--seats", str(seats), "--waitlist", "0",
            "--companions", "1", "--signup-opens-at", at(minutes=-1)))["id"]

    tokens = f"{work}/tokens"
    cli("bench-seed", "--members", str(a.members), "--tokens-out", tokens)
    full = activity(1)
    # every fourth member brings a companion: room for all of them in each accepted round
    roomy = [activity(a.members * 2) for _ in range(a.rounds)]
    server = subprocess.Popen(
        [srv, "serve", "--listen", "127.0.0.1:0", "--grab-address-rate", "0",
         "--keys", f"{work}/keys", *db],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "warn"})
    try:
        url = None
        for line in server.stdout:
            if "http://" in line:
                url = "http://" + line.split("http://", 1)[1].split()[0].rstrip(".,")
                break
        if url is None:
            sys.exit("the server did not say where it listens")

        def load(*args):
            """One load generator run: its JSON and the CPU seconds it and the others took."""
            pg = postgres_pids() if a.database else []
            before_db = database_cpu(pg)
            before_srv = proc_cpu(server.pid)
            before_written = written(server.pid)
            before_lg = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(
                [lg, "--url", url, "--tokens", tokens, "--concurrency", str(a.concurrency), *args],
                check=True, capture_output=True, text=True).stdout
            after_lg = resource.getrusage(resource.RUSAGE_CHILDREN)
            after_srv = proc_cpu(server.pid)
            after_written = written(server.pid)
            after_db = database_cpu(pg)
            result = json.loads(out.strip().splitlines()[-1])
            n = result["requests"]
            us = lambda s: round(s * 1e6 / n, 1)
            cpu = {
                "server_user_us": us(after_srv[0] - before_srv[0]),
                "server_sys_us": us(after_srv[1] - before_srv[1]),
                "loadgen_user_us": us(after_lg.ru_utime - before_lg.ru_utime),
                "loadgen_sys_us": us(after_lg.ru_stime - before_lg.ru_stime),
                "rps": result["answered_rps"],
                "server_write_bytes": round((after_written - before_written) / n),
            }
            if a.database:
                common = before_db.keys() & after_db.keys()
                cpu["database_us"] = us(sum(
                    after_db[p][0] + after_db[p][1] - before_db[p][0] - before_db[p][1]
                    for p in common))
            return result, cpu

        # warm up: the connections, and the full activity refused once (the memo holds it)
        load("--mode", "noop")
        load("--mode", "signup", "--activity", str(full))
        runs = {"noop": [], "refused": [], "accepted": []}
        for r in range(a.rounds):
            for kind, args, expect in (
                ("noop", ("--mode", "noop"), {"ok"}),
                ("refused", ("--mode", "signup", "--activity", str(full)),
                 {"signup_full", "already_signed_up"}),
                ("accepted", ("--mode", "signup", "--activity", str(roomy[r])), {"confirmed"}),
            ):
                # the per-member limit (2 a second, 5 at once) refills between sign-up runs
                time.sleep(1)
                result, cpu = load(*args)
                got = set(result["outcomes"])
                if not got <= expect or result["failed"]:
                    sys.exit(f"{kind}: unexpected outcomes {result['outcomes']}")
                runs[kind].append(cpu)
        line = {"bench": "cpu-split", "backend": "postgres" if a.database else "sqlite",
                "members": a.members, "rounds": a.rounds}
        for kind, cpus in runs.items():
            line[kind] = {k: statistics.median(c[k] for c in cpus) for k in cpus[0]}
            line[kind]["total_us"] = round(sum(
                v for k, v in line[kind].items() if k.endswith("_us")), 1)
        line["refused_per_noop"] = round(line["noop"]["total_us"] / line["refused"]["total_us"], 3)
        print(json.dumps(line))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
