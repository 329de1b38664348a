#!/usr/bin/env bash
# verify_independent.sh — docs/FORMAT.md is enough to verify a log (SPEC §5): the independent
# verifier tools/verify_log.py (Python, written from the document alone: py-lmdb, PyNaCl,
# hashlib's BLAKE2b, its own canonical msgpack decoder) agrees with `threadlog verify` on a
# real log (every event kind the demo writes, a key rotation, erasures, a checkpoint) and on
# damaged copies of it: each must fail, and both must name the same first bad event.
# Passes with a notice when python3 lacks lmdb or nacl (.ci/setup installs both).
#
# usage: verify_independent.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"; SRC="$2"
PY=/usr/bin/python3
command -v "$PY" > /dev/null || PY=python3
if ! "$PY" -c 'import lmdb, nacl.signing' 2> /dev/null; then
  echo "verify_independent: NOT RUN: python3 has no lmdb or nacl module (apt-get install python3-lmdb python3-nacl)"
  exit 0
fi
VERIFY=("$PY" "$SRC/tools/verify_log.py")
W=$(mktemp -d "${TMPDIR:-/tmp}/tlvi.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- the log: the demo's commands, a rotation, messages after it, two erasures, a checkpoint
L="$W/log"
"$TL" init "$L" > /dev/null
"$TL" -d "$L" apply "$SRC/examples/demo.jsonl" > /dev/null
"$TL" -d "$L" key rotate > /dev/null
R=$("$TL" -d "$L" --json stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["events"])') # key.rotated
"$TL" -d "$L" apply > /dev/null <<'EOF'
{"op":"message.send","as":"alice","id":"after-1","project":"o-1","channel":"chat","topic":"t-ship","body":"signed by the new key"}
{"op":"note.add","as":"bob","id":"after-2","project":"o-1","body":"to be erased"}
EOF
"$TL" -d "$L" erase after-2 --reason "test" > /dev/null
"$TL" -d "$L" erase a-label --reason "test" > /dev/null
"$TL" -d "$L" checkpoint > "$W/cp.json"
N=$("$TL" -d "$L" --json stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["events"])')
[ "$N" -ge 40 ] || fail "the log has only $N events"

out=$("${VERIFY[@]}" "$L" --checkpoint "$W/cp.json") || fail "verify_log.py refuses the intact log: $out"
[ "$out" = "ok $N events" ] || fail "verify_log.py on the intact log: $out (want ok $N events)"
"$TL" -d "$L" verify --checkpoint "$W/cp.json" > /dev/null || fail "threadlog verify refuses the intact log"
genesis=$("$PY" -c '
import lmdb, sys
env = lmdb.open(sys.argv[1], readonly=True, lock=False, max_dbs=64, subdir=True)
with env.begin() as t:
    print(t.get(b"genesis_key", db=env.open_db(b"meta", txn=t)).hex())' "$L")
out=$("${VERIFY[@]}" "$L" --key "$genesis") || fail "verify_log.py --key GENESIS: $out"

# ---- damaged copies: each change is made with py-lmdb on a copy of the log
damage() { # NAME PYTHON-STATEMENTS (t: a write transaction; log, meta, content: the databases; k(seq))
  local d="$W/$1"
  rm -rf "$d"; cp -r "$L" "$d"
  "$PY" - "$d" "$2" <<'EOF'
import lmdb, struct, sys
env = lmdb.open(sys.argv[1], max_dbs=64, subdir=True)
log, meta, content = (env.open_db(n) for n in (b"log", b"meta", b"content"))
def k(seq): return struct.pack(">Q", seq)
def flip(seq, i, x=1):
    v = bytearray(t.get(k(seq), db=log)); v[i] ^= x; t.put(k(seq), bytes(v), db=log)
with env.begin(write=True) as t:
    exec(sys.argv[2])
EOF
  local want got
  want=$("$TL" -d "$d" --json verify --checkpoint "$W/cp.json" 2> /dev/null || true)
  want=$("$PY" -c 'import json,sys; print(json.loads(sys.stdin.read()).get("first_bad_seq", "none"))' <<< "$want")
  got=$("${VERIFY[@]}" "$d" --checkpoint "$W/cp.json" || true)
  [ "$want" != none ] || fail "$1: threadlog verify does not see the damage"
  [[ "$got" == "bad event $want:"* ]] || fail "$1: threadlog verify names event $want, verify_log.py says: $got"
  echo "  $1: both name event $want"
}
damage payload-byte    'flip(5, 20)'
damage signature-byte  'flip(7, -1)'
damage genesis-key     'flip(1, -70)'
damage rotation-event  "flip($R, 30)"
damage after-rotation  "flip($((R + 1)), -1)"
damage deleted-event   't.delete(k(10), db=log)'
damage swapped-events  'a, b = t.get(k(10), db=log), t.get(k(20), db=log); t.put(k(10), b, db=log); t.put(k(20), a, db=log)'
damage last-event-gone "t.delete(k($N), db=log)"
damage content-byte    'c = t.cursor(db=content); c.first(); v = bytearray(c.value()); v[-1] ^= 1; t.put(c.key(), bytes(v), db=content)'
damage content-gone    'c = t.cursor(db=content); c.first(); t.delete(c.key(), db=content)'
damage head-short      'v = t.get(b"head", db=meta); t.put(b"head", v[:79], db=meta)'
damage genesis-copy    'v = bytearray(t.get(b"genesis_key", db=meta)); v[0] ^= 1; t.put(b"genesis_key", bytes(v), db=meta)'
echo "verify_independent: ok ($N events, 12 damaged copies: both verifiers name the same event)"
