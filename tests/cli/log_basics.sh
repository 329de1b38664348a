#!/usr/bin/env bash
# log_basics.sh — the log's own commands on the real binary: init (public key, key file
# mode 600, refusing an existing log or a non-empty directory), log (genesis first) and
# log --follow seeing another process's appends, verify (exit 0 on a good log, 1 naming
# the first bad event after bytes of data.mdb are flipped in place), checkpoint and
# verify --checkpoint, key rotate, pinned keys, stats, and --help for each command; a reader
# of `log` that stalls holds no read snapshot. The log on a read-only copy, a read-only mount
# and a full disk: log_storage.sh.
#
# usage: log_basics.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
T=$(mktemp -d)
FOLLOWER=
cleanup() {
  [ -n "$FOLLOWER" ] && kill "$FOLLOWER" 2> /dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=lib/checks.sh
. "$(dirname "$0")/lib/checks.sh"
D=$T/log
mode() { stat -c %a "$1"; }

# ---- init
status 0 "$TL" init "$D"
PK1=$OUT
[[ "$PK1" =~ ^[0-9a-f]{64}$ ]] || fail "init printed '$PK1', not a public key"
[ "$(mode "$D/writer.key")" = 600 ] || fail "key file mode $(mode "$D/writer.key")"
[ "$(stat -c %s "$D/writer.key")" = 64 ] || fail "key file size"
[ "$(mode "$D")" = 700 ] || fail "log directory mode $(mode "$D")"
cp "$D/writer.key" "$T/key.before"

# an existing log: refused, exit 1, nothing changed
status 1 "$TL" init "$D"
grep -q exists "$T/stderr" || fail "init on a log: $(cat "$T/stderr")"
status 1 "$TL" --json init "$D"
jcheck "$OUT" 'o["ok"] is False and o["error"] == "exists" and o["message"]'
status 1 "$TL" init --json "$D"
jcheck "$OUT" 'o["error"] == "exists"'
cmp -s "$D/writer.key" "$T/key.before" || fail "init on an existing log changed the key"

# a non-empty directory that is not a log: refused, nothing written
mkdir "$T/other" && echo mine > "$T/other/notes.txt"
status 1 "$TL" --json init "$T/other"
jcheck "$OUT" 'o["error"] == "invalid_input"'
[ ! -e "$T/other/writer.key" ] && [ ! -e "$T/other/data.mdb" ] || fail "init wrote into a foreign directory"
# ... also when the file there is named data.mdb (junk, empty, a directory): not "exists"
# ("already holds a log", which every other command contradicts), and nothing created
for junk in text empty dir; do
  mkdir "$T/stray-$junk"
  case $junk in text) echo mine > "$T/stray-$junk/data.mdb" ;; empty) : > "$T/stray-$junk/data.mdb" ;; dir) mkdir "$T/stray-$junk/data.mdb" ;; esac
  status 1 "$TL" --json init "$T/stray-$junk"
  jcheck "$OUT" 'o["error"] == "invalid_input" and "holds no log" in o["message"]'
  [ "$(ls -A "$T/stray-$junk")" = data.mdb ] || fail "init beside a stray data.mdb ($junk) left $(ls -A "$T/stray-$junk")"
done

# init that runs out of room (a file size limit stands in for a full disk), in either of
# its two steps: storage, and nothing left behind -- not a half-made log that the next init
# would call "exists" and everything else "damaged", nor its secret key; an empty directory
# the operator made stays
for blocks in 8 24; do
  for pre in missing empty; do
    rm -rf "$T/full"
    [ $pre = empty ] && mkdir "$T/full"
    out=$( (trap '' XFSZ; ulimit -f $blocks; "$TL" --json init "$T/full") ) && fail "init within $blocks KiB succeeded"
    jcheck "$out" 'o["ok"] is False and o["error"] == "storage"'
    if [ $pre = empty ]; then
      [ -d "$T/full" ] && [ -z "$(ls -A "$T/full")" ] || fail "init ($blocks KiB) left $(ls -A "$T/full")"
    else
      [ ! -e "$T/full" ] || fail "init ($blocks KiB) left $T/full: $(ls -A "$T/full")"
    fi
    "$TL" init "$T/full" > /dev/null || fail "init after a failed one ($blocks KiB, $pre)"
  done
done
# the same with a trailing slash: the directory is still init's own to remove (and 0700)
rm -rf "$T/full" "$T/fullp"
out=$( (trap '' XFSZ; ulimit -f 8; "$TL" --json init "$T/fullp/log/") ) && fail "init within 8 KiB succeeded"
[ ! -e "$T/fullp/log" ] || fail "init (trailing slash) left $T/fullp/log"
"$TL" init "$T/fullp/log/" > /dev/null && [ "$(mode "$T/fullp/log")" = 700 ] || fail "init a/log/ made $(mode "$T/fullp/log")"

# a killed init leaves no half-made log: the log is built in DIR/.threadlog-init.PID and its
# data file linked in last, so after a SIGKILL at any moment DIR is either a whole log (verify
# passes, a write works) or no log, and init then succeeds there (it clears the leftovers)
for i in $(seq 40); do
  rm -rf "$T/killed"
  "$TL" init "$T/killed" > /dev/null 2>&1 &
  p=$!
  sleep "0.00$((i % 10))"
  kill -KILL $p 2>/dev/null || true
  wait $p 2>/dev/null || true
  if [ ! -e "$T/killed/data.mdb" ]; then
    "$TL" init "$T/killed" > /dev/null 2>&1 || fail "init after a killed init ($i): $("$TL" init "$T/killed" 2>&1; ls -A "$T/killed")"
  fi
  "$TL" -d "$T/killed" verify > /dev/null 2>&1 || fail "a killed init ($i) left a log that fails verify: $(ls -A "$T/killed")"
  "$TL" -d "$T/killed" account --id a --name A > /dev/null 2>&1 || fail "no write after a killed init ($i)"
done
# the leftovers, made by hand: a key and a staging directory while no init holds the
# directory's lock are a dead init's, and cleared; while an init holds it (flock(1) stands in
# for one), another init answers exists and touches nothing
rm -rf "$T/left" && mkdir -p "$T/left/.threadlog-init.1" && echo x > "$T/left/writer.key"
"$TL" init "$T/left" > /dev/null || fail "init over a dead init's leftovers"
"$TL" -d "$T/left" verify > /dev/null || fail "verify after init over leftovers"
# a legacy rotation file (writer.key.new) holding a key the head does not name is stale: the
# next rotation removes it (keyfiles.c tl_keyfile_settle)
rm -rf "$T/leg" "$T/leg2" && "$TL" init "$T/leg" > /dev/null && "$TL" init "$T/leg2" > /dev/null
cp "$T/leg2/writer.key" "$T/leg/writer.key.new"
"$TL" -d "$T/leg" key rotate > /dev/null || fail "key rotate beside a stale writer.key.new"
[ ! -e "$T/leg/writer.key.new" ] || fail "a stale writer.key.new stayed after a rotation"
# a key file alone, with no staging directory, is no dead init's: refused, the key kept
rm -rf "$T/keyonly" && mkdir "$T/keyonly" && echo mine > "$T/keyonly/writer.key"
status 1 "$TL" --json init "$T/keyonly"
jcheck "$OUT" 'o["error"] == "invalid_input"'
[ "$(cat "$T/keyonly/writer.key")" = mine ] && [ ! -e "$T/keyonly/data.mdb" ] || fail "init over a lone key file left $(ls -A "$T/keyonly")"
if command -v flock > /dev/null; then
  rm -rf "$T/live" && mkdir -p "$T/live/.threadlog-init.1"
  flock "$T/live" sleep 3 &
  holder=$!
  sleep 0.3
  status 1 "$TL" --json init "$T/live"
  jcheck "$OUT" 'o["error"] == "exists"'
  [ -d "$T/live/.threadlog-init.1" ] || fail "init removed a running init's staging directory"
  wait $holder
  "$TL" init "$T/live" > /dev/null || fail "init once the other let go"
fi
# many inits at once in one directory: exactly one makes the log, the others answer exists
rm -rf "$T/race"
for i in $(seq 8); do "$TL" --json init "$T/race" > "$T/race.$i" 2>/dev/null & done
wait
won=$(grep -l '"ok":true' "$T"/race.* | wc -l)
[ "$won" = 1 ] || fail "$won of 8 concurrent inits succeeded"
[ "$(ls -A "$T/race" | sort | tr '\n' ' ')" = "data.mdb writer.key " ] || fail "concurrent inits left $(ls -A "$T/race")"
"$TL" -d "$T/race" account --id a --name A > /dev/null || fail "no write after concurrent inits"

# --json init, with the limit in force
status 0 "$TL" --json init --max-attachment 1000 "$T/j"
jcheck "$OUT" 'o["ok"] is True and len(o["public_key"]) == 64 and o["max_attachment"] == 1000 and o["dir"].endswith("/j")'
status 0 "$TL" --json init "$T/jd"
jcheck "$OUT" 'o["max_attachment"] == 25 * 1024 * 1024'
# limits that are not one: refused, nothing created (0 is not "the default", 2^64 is not clamped)
for bad in 0 1073741825 18446744073709551615 18446744073709551616 +5 " 5" -1 1e3; do
  status 1 "$TL" --json init --max-attachment "$bad" "$T/jbad"
  jcheck "$OUT" 'o["ok"] is False and o["error"] == "invalid_input"'
  [ ! -e "$T/jbad" ] || fail "init --max-attachment '$bad' created the directory"
done
status 0 "$TL" --json init --max-attachment 1073741824 "$T/jmax"
jcheck "$OUT" 'o["max_attachment"] == 1 << 30'
# a path that is a file: invalid_input, the file untouched
echo mine > "$T/afile"
status 1 "$TL" --json init "$T/afile"
jcheck "$OUT" 'o["error"] == "invalid_input"'
[ "$(cat "$T/afile")" = mine ] || fail "init touched a file"

# ---- log: the genesis first
status 0 "$TL" -d "$D" log --json
[ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ] || fail "a new log holds one event: $OUT"
jcheck "$OUT" 'o["seq"] == 1 and o["actor"] == "@operator" and o["kind"] == "log.created" and "project" not in o'
jcheck "$OUT" "o['payload']['public_key'] == '$PK1' and o['payload']['format'] == 1 and o['ts'] > 0"
status 0 "$TL" -d "$D" --json log
jcheck "$OUT" 'o["seq"] == 1'
THREADLOG_DIR="$D" status 0 "$TL" log
grep -q 'log.created' <<< "$OUT" || fail "human log: $OUT"

# ---- verify and checkpoint
status 0 "$TL" -d "$D" verify
grep -q '^ok: 1 events' <<< "$OUT" || fail "verify: $OUT"
status 0 "$TL" -d "$D" verify --json
jcheck "$OUT" 'o["ok"] is True and o["events"] == 1 and o["checkpoint"] is False'
status 0 "$TL" -d "$D" checkpoint
CP1=$OUT
echo "$CP1" > "$T/cp1.json"
jcheck "$CP1" "sorted(o) == ['hash', 'key', 'seq', 'signature', 'ts'] and o['seq'] == 1 and o['key'] == '$PK1'"
status 0 "$TL" -d "$D" verify --checkpoint "$T/cp1.json"
grep -q 'extends the checkpoint' <<< "$OUT" || fail "verify --checkpoint: $OUT"
status 1 "$TL" -d "$D" --json verify --checkpoint "$T/missing.json"
jcheck "$OUT" 'o["ok"] is False'

# ---- key rotate
status 0 "$TL" -d "$D" key rotate
PK2=$OUT
[[ "$PK2" =~ ^[0-9a-f]{64}$ ]] && [ "$PK2" != "$PK1" ] || fail "key rotate printed '$PK2'"
[ "$(mode "$D/writer.key")" = 600 ] || fail "rotated key file mode $(mode "$D/writer.key")"
! ls "$D"/writer.key.new* > /dev/null 2>&1 || fail "a writer.key.new was left behind"
status 0 "$TL" -d "$D" --json key rotate
jcheck "$OUT" 'o["ok"] is True and len(o["public_key"]) == 64'
PK3=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["public_key"])' "$OUT")
status 0 "$TL" -d "$D" log --json --from 2
jcheck "$(sed -n 1p <<< "$OUT")" "o['seq'] == 2 and o['kind'] == 'key.rotated' and o['actor'] == '@operator' and o['payload']['public_key'] == '$PK2'"
jcheck "$(sed -n 2p <<< "$OUT")" "o['seq'] == 3 and o['payload']['public_key'] == '$PK3'"
status 0 "$TL" -d "$D" log --json --from 2 --limit 1
[ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ] || fail "log --limit 1: $OUT"
status 0 timeout 10 "$TL" -d "$D" log --json --follow --from 2 --limit 1   # stops once it has N
[ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ] || fail "log --follow --limit 1: $OUT"
status 0 "$TL" -d "$D" log --json --from 2 --limit 0   # 0: no limit, as in the queries
[ "$(printf '%s\n' "$OUT" | wc -l)" = 2 ] || fail "log --limit 0: $OUT"
status 0 "$TL" -d "$D" verify --checkpoint "$T/cp1.json"
status 0 "$TL" -d "$D" checkpoint
echo "$OUT" > "$T/cp3.json"
jcheck "$OUT" "o['seq'] == 3 and o['key'] == '$PK3'"
status 0 "$TL" -d "$D" verify --checkpoint "$T/cp3.json"

# pinned keys: each key of the chain; a stranger's key fails at 1; a malformed one is usage
for k in "$PK1" "$PK2" "$PK3"; do status 0 "$TL" -d "$D" verify --key "$k"; done
status 1 "$TL" -d "$D" --json verify --key "$(printf '42%.0s' {1..32})"
jcheck "$OUT" 'o["ok"] is False and o["error"] == "corrupt" and o["first_bad_seq"] == 1'
status 1 "$TL" -d "$D" verify --key "$(printf '+f%.0s' {1..32})"
status 1 "$TL" -d "$D" verify --key abc

# a checkpoint of another log is refused
status 0 "$TL" -d "$T/j" checkpoint
echo "$OUT" > "$T/cpj.json"
status 1 "$TL" -d "$D" --json verify --checkpoint "$T/cpj.json"
jcheck "$OUT" 'o["error"] == "corrupt" and o["first_bad_seq"] == 1'

# a key file others may read: writing refused (error "key"), reading still works
chmod 644 "$D/writer.key"
status 1 "$TL" -d "$D" --json key rotate
jcheck "$OUT" 'o["error"] == "key" and "chmod" in o["message"]'
status 1 "$TL" -d "$D" --json checkpoint
status 0 "$TL" -d "$D" verify
status 0 "$TL" -d "$D" log
chmod 600 "$D/writer.key"

# a key file whose public half is not its seed's (one bit of the seed flipped): it would sign
# events that never verify, so every write is refused ("key") and the log stays as it was;
# a leftover rotation file so damaged is not renamed over the good key either (on a copy)
K=$T/keycopy
cp -a "$D" "$K"
cp "$K/writer.key" "$T/key.good"
"$PY" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[0]^=1; open(p,"wb").write(b)' "$K/writer.key"
status 1 "$TL" -d "$K" --json checkpoint
jcheck "$OUT" 'o["error"] == "key" and "damaged" in o["message"]'
status 1 "$TL" -d "$K" --json account --id kbad --name K
jcheck "$OUT" 'o["error"] == "key"'
status 1 "$TL" -d "$K" --json key rotate
status 0 "$TL" -d "$K" --json verify
jcheck "$OUT" 'o["events"] == 3'
# the same for the public half's last byte, and for a file one byte too long
for edit in 'b[-1]^=1' 'b.append(0)'; do
  "$PY" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); '"$edit"'; open(p,"wb").write(b)' "$K/writer.key"
  status 1 "$TL" -d "$K" --json account --id kbad --name K
  jcheck "$OUT" 'o["error"] == "key"'
  cp "$T/key.good" "$K/writer.key"
done
cp "$T/key.good" "$K/writer.key"
PK=$("$PY" -c 'import sys; print(open(sys.argv[1],"rb").read()[32:].hex())' "$K/writer.key")
"$PY" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[5]^=1; open(sys.argv[2],"wb").write(b)' "$K/writer.key" "$K/writer.key.new.$PK"
chmod 600 "$K/writer.key.new.$PK"
status 0 "$TL" -d "$K" --json account --id kgood --name K
status 0 "$TL" -d "$K" verify
cmp -s "$K/writer.key" "$T/key.good" || fail "a damaged rotation file replaced the writer key"
rm -rf "$K"

# ---- stats
status 0 "$TL" -d "$D" stats --json
jcheck "$OUT" 'o["events"] == 3 and o["log_bytes"] > 3 * 64 and o["map_bytes"] > 0'
# the log's bytes are its records' (event bytes + signature, counted here from the export),
# bytes per event their mean, and every projection's database is listed with its size
STATS=$OUT
"$TL" -d "$D" export > "$T/stats.export"
"$PY" - "$STATS" "$T/stats.export" <<'PY' || fail "stats: $STATS"
import base64, json, sys
st = json.loads(sys.argv[1])
recs = [r for r in map(json.loads, open(sys.argv[2])) if r["type"] == "event"]
size = sum(len(base64.b64decode(r["bytes"])) + len(bytes.fromhex(r["signature"])) for r in recs)
assert st["log_bytes"] == size, (st["log_bytes"], size)
assert abs(st["bytes_per_event"] - size / len(recs)) < 0.06, st["bytes_per_event"]
names = {d["name"] for d in st["databases"]}
assert {"log", "meta", "content", "state", "catalog", "messages", "unread", "tracking", "dashboard", "history"} <= names, names
assert all(d["bytes"] == d["pages"] * 4096 for d in st["databases"]), st["databases"]
assert sum(d["bytes"] for d in st["databases"]) <= st["file_bytes"], st
PY
# for people: one line per database, its name first
status 0 "$TL" -d "$D" stats
grep -Eq '^tracking +[0-9]+ +[0-9]+ +[0-9]+$' <<< "$OUT" || fail "human stats has no tracking row: $OUT"
! grep -q '{' <<< "$OUT" || fail "human stats prints JSON: $OUT"

# ---- the operator's slips: clear errors, nothing written
status 1 "$TL" -d
grep -q -- "-d needs a directory" "$T/stderr" || fail "bare -d: $(cat "$T/stderr")"
status 1 "$TL" --json -d
jcheck "$OUT" 'o["error"] == "invalid_input" and "-d" in o["message"]'
status 1 "$TL" -d --json stats      # a flag is never taken for the directory
jcheck "$OUT" 'o["error"] == "invalid_input" and "-d" in o["message"]'
status 1 "$TL" --json stats -d
jcheck "$OUT" 'o["error"] == "invalid_input"'
status 1 "$TL" --json -d "$T/one" init "$T/two"
jcheck "$OUT" 'o["error"] == "invalid_input" and "two directories" in o["message"]'
[ ! -e "$T/one" ] && [ ! -e "$T/two" ] || fail "init naming two directories created one"
# one directory however written is one
(cd "$T" && "$TL" -d same init ./same/ > /dev/null) || fail "-d same init ./same/ was refused"
[ -f "$T/same/data.mdb" ] || fail "-d same init ./same/ made no log"
(cd "$T" && "$TL" -d abs init "$T/abs" > /dev/null) || fail "-d abs init \$T/abs was refused"
# without --json, a malformed flag is a refusal like any other (DECISIONS, "CLI exit
# statuses"): one line on stderr naming the code, `threadlog CMD: invalid_input: ...`, and
# nothing on stdout
for args in "log --limit abc" "log --bogus 1" "verify --threads 0" "stats extra" "replay --until-seq x"; do
  # shellcheck disable=SC2086
  status 1 "$TL" -d "$D" $args
  [ -z "$OUT" ] || fail "$args: refusal printed on stdout: $OUT"
  grep -q "^threadlog ${args%% *}: invalid_input: " "$T/stderr" || fail "$args: stderr does not name the code: $(cat "$T/stderr")"
  [ "$(wc -l < "$T/stderr")" = 1 ] || fail "$args: more than one line on stderr: $(cat "$T/stderr")"
done
# init's DIR is never a word starting with '-' (as -d's): `init -h` made a log named "-h";
# -h is --help after a command too (its usage), any other dash word a refusal
status 0 env -C "$T" "$TL" init -h
grep -q "^usage: threadlog \[-d DIR\] init" <<< "$OUT" || fail "init -h: $OUT"
status 1 env -C "$T" "$TL" --json init -x
jcheck "$OUT" 'o["error"] == "invalid_input"'
for w in -h -x; do [ ! -e "$T/$w" ] || fail "init $w made a log named $w"; done
# a switch takes no value: --json=false is refused, not read as --json
status 1 "$TL" -d "$D" digest --json=false
grep -q -- "--json takes no value" "$T/stderr" || fail "digest --json=false: $(cat "$T/stderr")"
(cd "$T" && "$TL" init ./-dash > /dev/null) && [ -f "$T/-dash/data.mdb" ] || fail "init ./-dash was refused"
echo keep > "$T/taken"
status 1 "$TL" -d "$D" --json export -o "$T/taken"
jcheck "$OUT" 'o["error"] == "exists"'
[ "$(cat "$T/taken")" = keep ] || fail "export overwrote a file"
# -o never takes a word starting with '-' for the file: `export -o --json` wrote a file "--json"
status 1 env -C "$T" "$TL" -d "$D" export -o --json
jcheck "$OUT" 'o["error"] == "invalid_input"'
[ ! -e "$T/--json" ] || fail "export -o --json wrote a file named --json"
# a failed export leaves no file behind (the retry's -o would be refused as "exists")
status 1 "$TL" -d "$D" --json export --project nope -o "$T/failed.jsonl"
jcheck "$OUT" 'o["error"] == "not_found"'
status 1 "$TL" -d "$D" --json export --project 'bad!' -o "$T/failed.jsonl"
jcheck "$OUT" 'o["error"] == "invalid_input"'
[ ! -e "$T/failed.jsonl" ] || fail "a failed export left $T/failed.jsonl"
# an export killed while it writes (SIGXFSZ past a 1 KiB file size limit) leaves no FILE
# (only a hidden temporary file beside it), so the retry writes it
"$TL" -d "$D" export > "$T/whole.jsonl"
[ "$(stat -c %s "$T/whole.jsonl")" -gt 2048 ] || fail "the export is too small to be cut: $(stat -c %s "$T/whole.jsonl") bytes"
status=0
(ulimit -f 1; exec "$TL" -d "$D" export -o "$T/killed.jsonl") 2> /dev/null || status=$?
[ "$status" -gt 128 ] || fail "the export past the size limit was not killed (status $status)"
[ ! -e "$T/killed.jsonl" ] || fail "a killed export left $T/killed.jsonl ($(stat -c %s "$T/killed.jsonl") bytes)"
status 0 "$TL" -d "$D" export -o "$T/killed.jsonl"
cmp -s "$T/killed.jsonl" "$T/whole.jsonl" || fail "the retried export differs from the whole one"
rm -f "$T"/.killed.jsonl.partial-*
status 1 "$TL" -d "$D" --json replay --into "$T/taken"
jcheck "$OUT" 'o["error"] == "invalid_input" and "not a directory" in o["message"]'

# ---- started with standard input and output closed, and no lock file (a copy of data.mdb
# and the key): the files the command opens must not become its stdin/stdout (the result
# line was written over data.mdb's first page, exit 0)
cp -a "$D" "$T/closedfds" && rm -f "$T/closedfds/lock.mdb"
cmp_before=$(md5sum < "$T/closedfds/data.mdb")
"$TL" -d "$T/closedfds" apply <&- >&- 2> /dev/null || true
[ "$(md5sum < "$T/closedfds/data.mdb")" = "$cmp_before" ] || fail "apply with fds 0 and 1 closed changed data.mdb"
# stdout closed, the input a file: its result lines went into lock.mdb (opened as fd 1)
echo 'not json' > "$T/badline"
"$TL" -d "$T/closedfds" apply "$T/badline" >&- 2> /dev/null || true
[ "$(stat -c %s "$T/closedfds/lock.mdb")" = 16384 ] || fail "apply with stdout closed wrote into lock.mdb ($(stat -c %s "$T/closedfds/lock.mdb") bytes)"
[ "$(md5sum < "$T/closedfds/data.mdb")" = "$cmp_before" ] || fail "apply with stdout closed changed data.mdb"
status 0 "$TL" -d "$T/closedfds" verify
rm -rf "$T/closedfds"

# ---- output that cannot be written (a full device): exit 1, whatever the command did
if [ -w /dev/full ]; then
  for c in checkpoint digest "log" stats verify; do
    st=0
    # shellcheck disable=SC2086
    "$TL" -d "$D" $c > /dev/full 2> "$T/full.err" || st=$?
    [ "$st" = 1 ] && grep -q "cannot write the output" "$T/full.err" || fail "$c to /dev/full exited $st ($(cat "$T/full.err"))"
  done
fi

# ---- --until-time: a date that does not exist is refused, not moved to the next one
for bad in 2026-11-31T00:00:00Z 2027-02-29T00:00:00Z 2026-11-26T23:59:60Z; do
  status 1 "$TL" -d "$D" --json replay --until-time "$bad"
  jcheck "$OUT" 'o["error"] == "invalid_input"'
done

# ---- log --follow sees what another process appends
"$TL" -d "$D" log --follow --json > "$T/follow.out" 2> "$T/follow.err" &
FOLLOWER=$!
"$TL" -d "$D" key rotate > /dev/null
for _ in $(seq 100); do
  [ "$(wc -l < "$T/follow.out")" -ge 4 ] && break
  sleep 0.1
done
[ "$(wc -l < "$T/follow.out")" = 4 ] || fail "log --follow printed $(wc -l < "$T/follow.out") lines: $(cat "$T/follow.out" "$T/follow.err")"
jcheck "$(sed -n 4p "$T/follow.out")" 'o["seq"] == 4 and o["kind"] == "key.rotated"'
kill "$FOLLOWER"
wait "$FOLLOWER" 2> /dev/null || true
FOLLOWER=

# ---- a reader of `log` that stalls (a pager left open, a full pipe) holds no read snapshot
# while `log` waits to write: LMDB could not reuse pages freed after it began, and every other
# process's commit would grow the file meanwhile (a review: 1.6 MB to 95 MB). `log` formats a
# batch from a snapshot and writes it with the snapshot closed; LMDB's reader table (mdb_stat
# -r) then shows its slot idle ("-") while it is blocked on the pipe.
if command -v mdb_stat > /dev/null; then
  S=$T/stall-log
  "$TL" init "$S" > /dev/null
  name=$(printf 'n%.0s' $(seq 1000))
  for i in $(seq 200); do echo "{\"op\":\"account.create\",\"id\":\"s$i\",\"name\":\"$name\"}"; done |
    "$TL" -d "$S" apply > /dev/null
  mkfifo "$T/stall"
  "$TL" -d "$S" --json log > "$T/stall" &
  FOLLOWER=$!
  exec 7< "$T/stall" # opened, never read: ~230 KB of output against a 64 KiB pipe
  sleep 1
  kill -0 "$FOLLOWER" 2> /dev/null || fail "log did not block on a full pipe"
  slot=$( (mdb_stat -r "$S" || true) | awk -v p="$FOLLOWER" '$1 == p {print $3}') # exit 1 when no reader is active
  [ -z "$slot" ] || [ "$slot" = "-" ] || fail "log blocked on its output holds a read snapshot (txnid $slot)"
  # a write meanwhile is not held up, and the stalled log still ends at the head it began with
  status 0 "$TL" -d "$S" account --id late --name Late
  lines=$(cat <&7 | wc -l)
  exec 7<&-
  wait "$FOLLOWER" || fail "log exited $? after its reader drained the pipe"
  FOLLOWER=
  [ "$lines" = 201 ] || fail "the stalled log printed $lines lines, want 201 (genesis + 200, not the later write)"
fi

# ---- damage data.mdb in place: verify exits 1 and names the event
# The genesis record ends with its payload's last field, public_key (bin 32), and is
# followed by its 64-byte signature; LMDB may hold stale copies of a page, so every
# occurrence is changed.
status 0 "$TL" -d "$D" verify
cp "$D/data.mdb" "$T/data.good"
flip() { # flip OFFSET-FROM-THE-END-OF-THE-MARKER HEX-PUBKEY
  "$PY" - "$D/data.mdb" "$1" "$2" <<'PY'
import sys
path, off, pk = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
data = bytearray(open(path, "rb").read())
marker = b"\xaapublic_key\xc4\x20" + pk
n, at = 0, data.find(marker)
while at >= 0:
    data[at + len(marker) + off] ^= 0x01
    n += 1
    at = data.find(marker, at + 1)
assert n > 0, "marker not found"
open(path, "wb").write(bytes(data))
PY
}
flip -1 "$PK1"          # the last byte of the genesis public key
status 1 "$TL" -d "$D" --json verify
jcheck "$OUT" 'o["ok"] is False and o["error"] == "corrupt" and o["first_bad_seq"] == 1 and o["message"]'
status 1 "$TL" -d "$D" verify
grep -q 'FAILED at event 1' "$T/stderr" || fail "verify did not name event 1: $(cat "$T/stderr")"
cp "$T/data.good" "$D/data.mdb"
flip 10 "$PK1"          # a byte of the genesis signature
status 1 "$TL" -d "$D" --json verify
jcheck "$OUT" 'o["first_bad_seq"] == 1'
cp "$T/data.good" "$D/data.mdb"
flip 0 "$PK2"           # the first byte of key.rotated's signature (event 2)
status 1 "$TL" -d "$D" --json verify
jcheck "$OUT" 'o["first_bad_seq"] == 2'
cp "$T/data.good" "$D/data.mdb"
flip -32 "$PK3"         # the first byte of the key that event 3 hands over to
status 1 "$TL" -d "$D" --json verify
jcheck "$OUT" 'o["first_bad_seq"] == 3'
cp "$T/data.good" "$D/data.mdb"
status 0 "$TL" -d "$D" verify

# ---- log across its read batches (256 events each): every event once, in order, none skipped
# at a batch's edge; --from and --limit count across the edges too
M=$T/many
"$TL" init "$M" > /dev/null
for i in $(seq 600); do echo "{\"op\":\"account.create\",\"id\":\"m$i\",\"name\":\"M\"}"; done |
  "$TL" -d "$M" apply --nosync > /dev/null
status 0 "$TL" -d "$M" --json log
"$PY" -c 'import json,sys; s=[json.loads(l)["seq"] for l in sys.stdin]; sys.exit(s != list(range(1, 602)))' <<< "$OUT" \
  || fail "log of 601 events printed seqs $(sed -n '255,259p;511,515p' <<< "$OUT" | cut -c1-20)"
status 0 "$TL" -d "$M" --json log --from 250 --limit 300
"$PY" -c 'import json,sys; s=[json.loads(l)["seq"] for l in sys.stdin]; sys.exit(s != list(range(250, 550)))' <<< "$OUT" \
  || fail "log --from 250 --limit 300: $(wc -l <<< "$OUT") lines"
status 0 "$TL" -d "$M" log
[ "$(wc -l <<< "$OUT")" = 601 ] || fail "human log of 601 events printed $(wc -l <<< "$OUT") lines"

# ---- --help for every command of this group
for c in init log verify checkpoint "key rotate" stats; do
  # shellcheck disable=SC2086
  status 0 "$TL" $c --help
  grep -q "^usage: threadlog" <<< "$OUT" || fail "$c --help: $OUT"
done
status 0 "$TL" --help
for c in init log verify checkpoint "key rotate" stats; do
  grep -q "^  $c " <<< "$OUT" || fail "threadlog --help does not list $c"
done
status 2 "$TL"
# `threadlog help [COMMAND]` answers as --help does; an unknown topic is a usage error
status 0 "$TL" help
grep -q "^usage: threadlog" <<< "$OUT" || fail "threadlog help: $OUT"
status 0 "$TL" help key rotate
grep -q "^usage: threadlog \[-d DIR\] key rotate" <<< "$OUT" || fail "threadlog help key rotate: $OUT"
status 0 "$TL" help log
grep -q "^usage: threadlog \[-d DIR\] log " <<< "$OUT" || fail "threadlog help log: $OUT"
status 2 "$TL" help nope
status 2 "$TL" no-such-command
# a two-word command's first word alone: its subcommands (help: exit 0; none given: exit 2)
status 0 "$TL" key --help
grep -q "key rotate" <<< "$OUT" || fail "key --help does not name key rotate: $OUT"
status 2 "$TL" key
status 0 "$TL" attachment --help
grep -q "attachment get" <<< "$OUT" || fail "attachment --help does not name attachment get"

echo "log_basics: ok"
