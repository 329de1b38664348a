#!/usr/bin/env bash
# replay_cli.sh — `threadlog replay` as an operator runs it: in place and into a copy, as of
# a sequence or an ISO 8601 time, with verification; the digest it prints is the live one;
# in place, a past state is a preview that leaves the live projections as they are; refusals
# (a sequence past the head, a time before the log, a target that holds a log) exit 1 and
# change nothing; progress only on a terminal; readers during an in-place replay see the
# projections as they were until the swap.
#
# usage: replay_cli.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

D=$T/log
"$TL" init "$D" > /dev/null
"$TL" -d "$D" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"user.create","id":"sam","role":"staff","name":"Sam"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"Order"}
{"op":"topic.create","as":"alice","id":"t-1","project":"o-1","title":"Shipping","body":"When?","message_id":"m-1"}
JSON
N=$("$TL" -d "$D" --json stats | sed -E 's/.*"events":([0-9]+).*/\1/')
TRACK_THEN=$("$TL" -d "$D" --json tracking --as sam)
sleep 0.01
"$TL" -d "$D" apply > /dev/null <<'JSON'
{"op":"message.send","as":"sam","id":"m-2","project":"o-1","channel":"chat","topic":"t-1","body":"Tomorrow"}
{"op":"project.status","as":"alice","project":"o-1","status":"shipped"}
JSON
LIVE=$("$TL" -d "$D" digest)

# in place: the printed digest is the live one, and the state did not move
"$TL" -d "$D" --json replay --verify > "$T/out" 2> "$T/err"
grep -q "\"digest\":\"$LIVE\"" "$T/out" || fail "replay --json: $(cat "$T/out")"
grep -q '"verified":true' "$T/out" || fail "replay --json does not say verified"
[ ! -s "$T/err" ] || fail "progress printed although stderr is not a terminal: $(cat "$T/err")"
[ "$("$TL" -d "$D" digest)" = "$LIVE" ] || fail "live digest moved"
"$TL" -d "$D" replay > "$T/out"
grep -q "^replayed [0-9]* events in place .* events/s" "$T/out" && grep -q "^digest $LIVE\$" "$T/out" || fail "replay: $(cat "$T/out")"

# as of a sequence: tracking answers as it did then
"$TL" -d "$D" replay --into "$T/at-seq" --until-seq "$N" > /dev/null
# and the copy's file holds nothing written after N: the tail's records and content were
# deleted, and their pages cleared (a body sent after N stayed in the file before)
grep -q -a "Tomorrow" "$D/data.mdb" || fail "the live log does not hold m-2's body"
if grep -q -a "Tomorrow" "$T/at-seq/data.mdb"; then fail "a copy cut at $N holds the body of m-2, sent after it"; fi
# a copy is rebuilt in its map (TL_OPEN_WRITEMAP: no other process opens it meanwhile), so
# LMDB set its file's length to the map's size; in place the live log's file is written
# through buffers and ends at its last page
MAP=$("$TL" -d "$T/at-seq" --json stats | grep -oE '"map_bytes":[0-9]+' | cut -d: -f2)
[ "$(stat -c %s "$T/at-seq/data.mdb")" = "$MAP" ] || fail "the copy was not rebuilt in its map: data.mdb $(stat -c %s "$T/at-seq/data.mdb") bytes, map $MAP"
LMAP=$("$TL" -d "$D" --json stats | grep -oE '"map_bytes":[0-9]+' | cut -d: -f2)
[ "$(stat -c %s "$D/data.mdb")" -lt "$LMAP" ] || fail "the live log's data file was extended to its map: written in the map in place?"
[ "$("$TL" -d "$T/at-seq" --json tracking --as sam)" = "$TRACK_THEN" ] || fail "tracking as of $N differs"
"$TL" -d "$T/at-seq" verify > /dev/null || fail "the copy does not verify"
LAST=$("$TL" -d "$T/at-seq" --json log | tail -1 | sed -E 's/^\{"seq":([0-9]+),"ts":([0-9]+).*/\1 \2/')
[ "${LAST% *}" = "$N" ] || fail "the copy ends at ${LAST% *}, not $N"
TS=${LAST#* }
# as of a time, given in ISO 8601 UTC with microseconds
ISO=$(date -u -d "@$((TS / 1000000))" +%Y-%m-%dT%H:%M:%S).$(printf '%06d' $((TS % 1000000)))Z
"$TL" -d "$D" replay --into "$T/at-time" --until-time "$ISO" > /dev/null
[ "$("$TL" -d "$T/at-time" --json tracking --as sam)" = "$TRACK_THEN" ] || fail "tracking as of $ISO differs"
# and in microseconds
"$TL" -d "$D" replay --into "$T/at-us" --until-time "$TS" > /dev/null
[ "$("$TL" -d "$T/at-us" digest)" = "$("$TL" -d "$T/at-seq" digest)" ] || fail "--until-time in microseconds"
# the copy is read-only: no writer key in it, so it can never fork the log
if "$TL" -d "$T/at-seq" apply <<< '{"op":"account.create","id":"x","name":"X"}' > /dev/null 2>&1; then fail "appended to a copy"; fi
[ ! -e "$T/at-seq/writer.key" ] || fail "the writer key was copied"

# in place, a past moment is a preview: the digest of that state, the live one unchanged
OUT=$("$TL" -d "$D" --json replay --until-seq "$N")
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["ok"] and o["events"] == int(sys.argv[2]) and o["into"] is None and o["preview"] is True and o["digest"] == sys.argv[3], o' \
  "$OUT" "$N" "$("$TL" -d "$T/at-seq" digest)" || fail "in-place --until-seq: $OUT"
[ "$("$TL" -d "$D" digest)" = "$LIVE" ] || fail "an in-place preview moved the live digest"
[ "$("$TL" -d "$D" --json tracking --as sam)" != "$TRACK_THEN" ] || fail "an in-place preview rewound the live tables"
! ls -d "$D".until-* > /dev/null 2>&1 || fail "the preview's copy was left behind"

# a preview stopped by a signal removes its copy too (it holds bodies a later erasure would
# not reach): a log big enough for the preview to be caught running
B=$T/big
"$TL" init "$B" > /dev/null
python3 -c '
print("{\"op\":\"account.create\",\"id\":\"acme\",\"name\":\"Acme\"}")
print("{\"op\":\"user.create\",\"id\":\"alice\",\"role\":\"member\",\"account\":\"acme\",\"name\":\"Alice\"}")
print("{\"op\":\"project.create\",\"as\":\"alice\",\"id\":\"o-1\",\"account\":\"acme\",\"type\":\"order\",\"title\":\"O\"}")
for i in range(30000): print("{\"op\":\"note.add\",\"as\":\"alice\",\"project\":\"o-1\",\"body\":\"n%d\"}" % i)
' | "$TL" -d "$B" apply --nosync > /dev/null
BIG_LIVE=$("$TL" -d "$B" digest)
"$TL" -d "$B" replay --verify --threads 1 --until-seq 25000 > /dev/null 2>&1 &
PID=$!
for _ in $(seq 1 2000); do ls -d "$B".until-* > /dev/null 2>&1 && break; sleep 0.005; done
ls -d "$B".until-* > /dev/null 2>&1 || fail "the preview's copy never appeared"
sleep 0.05 # the handler is in place before the copy exists; the replay runs for seconds
kill -TERM "$PID"
rc=0; wait "$PID" || rc=$?
[ "$rc" -eq 143 ] || fail "the preview was not stopped by SIGTERM (exit $rc): make the log bigger"
! ls -d "$B".until-* > /dev/null 2>&1 || fail "a preview stopped by SIGTERM left its copy"
[ "$("$TL" -d "$B" digest)" = "$BIG_LIVE" ] || fail "a stopped preview moved the live digest"
OUT=$("$TL" -d "$B" --json replay --verify --until-seq 25000)
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["preview"] is True and o["verified_events"] == o["events"] == 25000, o' "$OUT" \
  || fail "preview --verify: $OUT"

# a copy killed while it is being built (SIGKILL: no handler runs) never leaves a log in its
# directory that is not the copy asked for: the copy is built in DIR/.threadlog-building and
# moved in when complete; the next run into DIR clears the leftovers
for delay in 0.02 0.1 0.3 0.6; do
  rm -rf "$T/killed"
  "$TL" -d "$B" replay --into "$T/killed" --until-seq 100 > /dev/null 2>&1 &
  PID=$!
  sleep "$delay"
  kill -KILL "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  if [ -e "$T/killed/data.mdb" ]; then # finished before the kill: then it is the cut copy
    OUT=$("$TL" -d "$T/killed" --json stats)
    python3 -c 'import json,sys; assert json.loads(sys.argv[1])["events"] == 100' "$OUT" \
      || fail "a copy killed after $delay s holds another log: $OUT"
  else
    if "$TL" -d "$T/killed" verify > /dev/null 2>&1; then fail "a copy killed after $delay s passes verify unfinished"; fi
    "$TL" -d "$B" replay --into "$T/killed" --until-seq 100 > /dev/null || fail "a second run into a killed copy's directory"
    ! ls -A "$T/killed" | grep -q '^\.threadlog-building' || fail "a build directory stayed after a complete copy: $(ls -A "$T/killed")"
    OUT=$("$TL" -d "$T/killed" --json stats)
    python3 -c 'import json,sys; assert json.loads(sys.argv[1])["events"] == 100' "$OUT" || fail "the copy after a kill: $OUT"
  fi
done

# the same leftovers made by hand (a killed replay's build directory, DIR/.threadlog-building.PID,
# with a copy half made in it): cleared by the next replay into DIR
rm -rf "$T/left" && mkdir -p "$T/left/.threadlog-building.1" && echo half > "$T/left/.threadlog-building.1/data.mdb"
"$TL" -d "$B" replay --into "$T/left" --until-seq 100 > /dev/null || fail "a replay into a killed replay's leftovers"
[ "$(ls -A "$T/left" | sort | tr '\n' ' ')" = "data.mdb " ] || fail "a replay into leftovers left $(ls -A "$T/left")"

# one replay at a time into a directory: while another holds its lock (flock(1) stands in
# for one), a replay into it answers exists and touches nothing
if command -v flock > /dev/null; then
  rm -rf "$T/locked" && mkdir "$T/locked"
  flock "$T/locked" sleep 3 &
  holder=$!
  sleep 0.3
  OUT=$("$TL" -d "$D" --json replay --into "$T/locked" 2>/dev/null) && fail "a replay into a locked directory succeeded"
  python3 -c 'import json,sys; assert json.loads(sys.argv[1])["error"] == "exists"' "$OUT" || fail "into a locked directory: $OUT"
  [ -z "$(ls -A "$T/locked")" ] || fail "a refused replay left $(ls -A "$T/locked")"
  wait $holder
  "$TL" -d "$D" replay --into "$T/locked" > /dev/null || fail "a replay once the lock was let go"
fi

# refusals change nothing (exit 1 with the error object, a malformed flag included)
set +e
# a mistyped flag is refused, not ignored (it would have run a whole replay in place)
OUT=$("$TL" -d "$D" --json replay --until-sq 3 2> "$T/err"); rc=$?
[ $rc -eq 1 ] && python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["error"] == "invalid_input" and "--until-sq" in o["message"]' "$OUT" \
  || fail "replay --until-sq: rc $rc $OUT"
"$TL" -d "$D" replay --until-seq 999999 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "ends at" "$T/err" || fail "in-place --until-seq past the head: rc $rc $(cat "$T/err")"
! ls -d "$D".until-* > /dev/null 2>&1 || fail "a refused preview left its copy"
"$TL" -d "$D" replay --into "$T/past" --until-seq 999999 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "ends at" "$T/err" || fail "--until-seq past the head: rc $rc $(cat "$T/err")"
[ ! -e "$T/past" ] || fail "a failed replay left its directory"
for t in 2001-01-01T00:00:00Z 0 1970-01-01T00:00:00Z 1969-07-20T20:17:40Z 1; do
  "$TL" -d "$D" replay --into "$T/past" --until-time "$t" 2> "$T/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "before the log was created" "$T/err" || fail "--until-time $t (before the log): rc $rc $(cat "$T/err")"
done
OUT=$("$TL" -d "$D" --json replay --into "$T/past" --until-time yesterday 2> "$T/err"); rc=$?
[ $rc -eq 1 ] && python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["ok"] is False and o["error"] == "invalid_input"' "$OUT" \
  || fail "--until-time yesterday: rc $rc $OUT"
# malformed values: refused, never a whole replay (--until-seq 0 is not "no bound"; the
# sequence starts at 1 with the genesis)
for args in "--until-seq 0" "--until-seq -1" "--until-seq 3x" "--threads 0" "--threads 17" "--threads -2" \
            "--until-time 2025-03-01T12:00:00" "--until-time 2025-03-01T12:00:00+02:00" "--into="; do
  # shellcheck disable=SC2086
  OUT=$("$TL" -d "$D" --json replay $args 2> "$T/err"); rc=$?
  [ $rc -eq 1 ] && python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o == {"ok": False, "error": "invalid_input", "message": o["message"]}' "$OUT" \
    || fail "replay $args: rc $rc $OUT"
done
# --into never takes a word starting with '-' for the directory, as -d does (write ./-name):
# `--into --verify` (DIR forgotten) made a copy named "--verify"
for w in --verify -x; do
  OUT=$(env -C "$T" "$TL" -d "$D" --json replay --into "$w" 2> "$T/err"); rc=$?
  [ $rc -eq 1 ] && python3 -c 'import json,sys; assert json.loads(sys.argv[1])["error"] == "invalid_input"' "$OUT" \
    && [ ! -e "$T/$w" ] || fail "replay --into $w: rc $rc $OUT; $(ls -A "$T")"
done
"$TL" -d "$D" replay --into "$T/at-seq" 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "exists" "$T/err" || fail "replay into a log: rc $rc $(cat "$T/err")"
mkdir "$T/busy" && touch "$T/busy/file"
"$TL" -d "$D" replay --into "$T/busy" 2> "$T/err"; rc=$?
[ $rc -ne 0 ] && [ -e "$T/busy/file" ] && [ ! -e "$T/busy/data.mdb" ] || fail "replay into a non-empty directory: rc $rc"
set -e
[ "$("$TL" -d "$D" digest)" = "$LIVE" ] || fail "live digest moved after refused replays"

# progress on a terminal: events/s and the time left
if command -v script > /dev/null; then
  script -qec "$TL -d $D replay" /dev/null > "$T/tty" 2>&1 || fail "replay under a terminal"
  grep -q "events/s  about" "$T/tty" || fail "no progress on a terminal: $(cat "$T/tty")"
fi
# ---- in place, readers keep the old projections until the new ones are swapped in, in one
# transaction: every digest and page read while a replay runs is the one from before (a
# replay rebuilds the same state, so anything else — an emptied or half-built projection —
# differs). The log is large enough that several reads overlap the replay; at least one must.
R=$T/during
"$TL" init "$R" > /dev/null
"$PY" - > "$T/during.jsonl" <<'PY'
print('{"op":"account.create","id":"acme","name":"Acme"}')
print('{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}')
print('{"op":"user.create","id":"bob","role":"member","account":"acme","name":"Bob"}')
for p in range(200):
    print('{"op":"project.create","as":"alice","id":"p-%d","account":"acme","type":"video","title":"P %d"}' % (p, p))
for i in range(40000):
    print('{"op":"note.add","as":"alice","project":"p-%d","body":"note %d"}' % (i % 200, i))
PY
"$TL" -d "$R" apply --nosync "$T/during.jsonl" > /dev/null
BEFORE=$("$TL" -d "$R" digest)
PAGE=$("$TL" -d "$R" --json tracking --as bob --limit 5)
"$TL" -d "$R" replay > "$T/during.out" &
pid=$!
overlapped=0
while kill -0 "$pid" 2> /dev/null; do
  now=$("$TL" -d "$R" digest) || fail "digest failed during a replay"
  page=$("$TL" -d "$R" --json tracking --as bob --limit 5) || fail "tracking failed during a replay"
  if kill -0 "$pid" 2> /dev/null; then overlapped=$((overlapped + 1)); fi
  [ "$now" = "$BEFORE" ] || fail "a reader saw other projections during the replay: $now, before $BEFORE"
  [ "$page" = "$PAGE" ] || fail "a tracking page changed during the replay: $page"
done
wait "$pid" || fail "the replay failed: $(cat "$T/during.out")"
[ "$overlapped" -ge 1 ] || fail "no read overlapped the replay (the log is too small to show anything)"
[ "$("$TL" -d "$R" digest)" = "$BEFORE" ] || fail "the replay changed the digest"
echo "replay_cli: $overlapped reads during the in-place replay saw the projections as before"

echo "replay_cli: ok"
