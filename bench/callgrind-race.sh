#!/bin/bash
# Server instructions per request of a race refusal (and of an accepted sign-up) against the
# no-op, counted by callgrind (deterministic to about 1 %, unlike throughput on a shared 2-core
# machine). Prints one JSON line.
#
#   CARGO_PROFILE_RELEASE_STRIP=false cargo build --release -p unionpass-server -p unionpass-loadgen
#   bench/callgrind-race.sh target/release/unionpass-server target/release/unionpass-loadgen [WORKDIR]
#
# A SQLite store with 3,000 members and their sessions. A campaign of one coupon, released a
# minute ago, and an activity of one seat without a waitlist, open for sign-up. The server runs
# under callgrind; the load generator at 32 connections warms it up (a no-op run, a grab run that
# takes the coupon), then each measured run is bracketed by a zeroing and a dump:
# - noop: 3,000 `GET /v1/health`;
# - grab: 3,000 members, 3,600 requests (double taps, retries), every one refused `sold_out`
#   from memory;
# - signup: after a warm-up run that fills the activity, 3,000 sign-ups refused by the memo;
# - accept: 3,000 sign-ups for a second activity with room for all, each accepted and committed
#   by the group writer (its thread is counted with the rest).
# Under valgrind SHA-256 runs in software (about 4,600 instructions a race request; natively
# the CPU's SHA extensions make it a few hundred).
set -euo pipefail
SRV=$(realpath "$1"); LG=$(realpath "$2"); OUT=${3:-$(mktemp -d)}
rm -rf "$OUT"; mkdir -p "$OUT"; cd "$OUT"
# CG_DB="--database postgres://postgres@127.0.0.1:5432/NAME" (an empty database) runs the server
# on PostgreSQL instead; only the server's own instructions are counted, not the database's
db=(${CG_DB:---db "$OUT/db.sqlite"})
"$SRV" bench-seed --members 3000 --tokens-out "$OUT/tokens" "${db[@]}" >/dev/null
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
CID=$("$SRV" campaign create --title-zh 券 --title-en Coupon --category bike --face-value 5 \
  --stock 1 --limit 2 --release-at "$(at '-1 min')" --end-at "$(at '+2 hour')" "${db[@]}" | id)
AID=$("$SRV" activity create --title-zh 运动会 --title-en Sports --category sports --place 体育中心 \
  --starts-at "$(at '+3 day')" --ends-at "$(at '+3 day 6 hour')" --seats 1 --waitlist 0 \
  --companions 1 --signup-opens-at "$(at '-1 min')" "${db[@]}" | id)
# room for every member and a quarter's companion: each sign-up of the last run is accepted
AID2=$("$SRV" activity create --title-zh 亲子日 --title-en Family --category family --place 公园 \
  --starts-at "$(at '+4 day')" --ends-at "$(at '+4 day 6 hour')" --seats 4000 --waitlist 0 \
  --companions 1 --signup-opens-at "$(at '-1 min')" "${db[@]}" | id)
PORT=$((20000 + RANDOM % 20000)); URL=http://127.0.0.1:$PORT
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" "$SRV" serve \
  --listen 127.0.0.1:$PORT --grab-address-rate 0 --keys "$OUT/keys" "${db[@]}" \
  >"$OUT/server.out" 2>"$OUT/server.err" &
VG=$!
trap 'kill $VG 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do grep -q http "$OUT/server.out" 2>/dev/null && break; sleep 1; done
load() { "$LG" --url "$URL" --tokens "$OUT/tokens" --concurrency 32 "$@"; }
load --mode noop >/dev/null
load --mode grab --campaign "$CID" >/dev/null
callgrind_control -z $VG >/dev/null 2>&1
load --mode noop >"$OUT/noop.json"
callgrind_control -d noop $VG >/dev/null 2>&1
load --mode grab --campaign "$CID" >"$OUT/grab.json"
callgrind_control -d grab $VG >/dev/null 2>&1
# the per-member limit (2/s, burst 5) refills before the sign-ups
sleep 3
load --mode signup --activity "$AID" >/dev/null
sleep 3
callgrind_control -z $VG >/dev/null 2>&1
load --mode signup --activity "$AID" >"$OUT/signup.json"
callgrind_control -d signup $VG >/dev/null 2>&1
sleep 3
callgrind_control -z $VG >/dev/null 2>&1
load --mode signup --activity "$AID2" >"$OUT/accept.json"
callgrind_control -d accept $VG >/dev/null 2>&1
kill $VG; wait $VG 2>/dev/null || true
trap - EXIT
python3 - "$OUT" <<'PY'
import glob, json, sys
out = sys.argv[1]
def total(part):
    (f,) = glob.glob(f"{out}/cg.*.{part}")
    for line in open(f):
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
def answered(name):
    r = json.load(open(f"{out}/{name}.json"))
    assert r["failed"] == 0, (name, r)
    return r["requests"] + r["extra_answered"]
expect = {"noop": {"ok"}, "grab": {"sold_out"}, "signup": {"signup_full", "already_signed_up"},
          "accept": {"confirmed"}}
for name, codes in expect.items():
    got = set(json.load(open(f"{out}/{name}.json"))["outcomes"])
    assert got <= codes, (name, got)
per = {name: round(total(i + 1) / answered(name)) for i, name in enumerate(expect)}
print(json.dumps({
    "bench": "callgrind-race",
    "noop_instructions": per["noop"],
    "grab_refusal_instructions": per["grab"],
    "signup_refusal_instructions": per["signup"],
    "signup_accepted_instructions": per["accept"],
    "grab_ratio": round(per["noop"] / per["grab"], 3),
    "signup_ratio": round(per["noop"] / per["signup"], 3),
    "work": out,
}))
PY
