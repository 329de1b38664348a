#!/usr/bin/env bash
# damaged.sh — data-driven damaged log directories (tests/reliability/damaged/CASE/).
#
#   bash damaged.sh CLI_PATH SOURCE_DIR [CASE...]
#
# A base log is built once (a generated stream with attachments, committed in many small
# groups so the file has a free list and overflow pages). Each case copies it and runs its
# `damage` script (bash, sourced: $L is the copy, $BASE the pristine log, $CLI, $TLREL, $WORK
# a scratch directory, $STREAM the base's input; it may start and kill processes, and write
# $WORK/reference.events when the log it damaged is not the base). Then every reading command and one
# write are run on the damaged log, each bounded in time, and:
#   - none may crash (a signal) or hang (60 s) — except, in a case whose expect says
#     `known lmdb-crash`, an abort on one of LMDB's own assertions or a SIGSEGV/SIGBUS: LMDB
#     follows a damaged page's contents without checks (tests/fuzz/README.md); those are
#     reported as the known limitation they are;
#   - the outcome of `verify --json` must be the case's `expect` file's `outcome`:
#       ok            verify passes (LMDB recovered an older or the same state)
#       verify-fails  verify exits 1 naming a bad event (`bad_seq N`, or the number the damage
#                     script wrote to $WORK/bad_seq)
#       error CODE    the log refuses to open with a clean error (corrupt, not_found, key, ...)
#       any           whichever, as long as it is one of the above (or lmdb-crash, when known)
#   - when verify passes, every event `log --json` prints is byte for byte the base log's
#     event of that sequence (never a silent wrong answer), and the projection digest is
#     compared with a fresh replay's (reported; `digest mismatch` in expect makes it required
#     to differ, `digest equal` to agree);
#   - `write ok|refused|any` in expect: whether appending one command works.
source "$(dirname "$0")/lib.sh"
CASES_DIR=$(cd "$(dirname "$0")" && pwd)/damaged
cd "$REL_TMP"

BASE=$REL_TMP/base
"$CLI" init "$BASE" >/dev/null
"$TLREL" gen --prefix d --lines 400 --seed 3 --attach-bytes 9000 --big-every 3 > base.jsonl
"$CLI" -d "$BASE" apply --sync-every 20 base.jsonl > base.ack
"$CLI" -d "$BASE" log --json > base.events
rm -f "$BASE/lock.mdb"
STREAM=$REL_TMP/base.jsonl
rel_say "base log: $(wc -l < base.events) events, $(stat -c %s "$BASE/data.mdb") bytes"

# Run a CLI command on $L bounded in time; prints its exit status; output in $WORK/$name.out.
bounded() {
  local name=$1
  shift
  local st=0
  # (braces: the shell's own "Aborted" notice goes to a file, not the test's output)
  { timeout -k 5 60 "$CLI" -d "$L" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || st=$?; } 2>> "$WORK/shell.err"
  if [ "$st" = 124 ] || [ "$st" = 137 ]; then
    echo "HANG: $name ($*) did not finish in 60 s" >> "$WORK/problems"
  elif [ "$st" -gt 128 ]; then
    local what="$name ($*) died of signal $((st - 128)): $(tail -c 300 "$WORK/$name.err")"
    if [ "$KNOWN_LMDB" = 1 ] && lmdb_crash "$WORK/$name.err" "$st"; then
      echo "KNOWN LMDB LIMITATION: $what" >> "$WORK/known"
    else
      echo "CRASH: $what" >> "$WORK/problems"
    fi
  fi
  echo "$st"
}

# A crash that is LMDB's own (known limitation): one of its assertions, a SIGSEGV/SIGBUS, or
# under ASan a SEGV whose top frame is in liblmdb or any BUS (a page past the file's end).
lmdb_crash() { # ERRFILE STATUS
  grep -q 'mdb\.c:.*Assertion' "$1" && return 0
  [ "$2" = 139 ] || [ "$2" = 135 ] && return 0
  grep -q 'AddressSanitizer: BUS' "$1" && return 0
  grep -q 'AddressSanitizer: SEGV' "$1" && grep -m1 -E '^ +#0 ' "$1" | grep -q liblmdb && return 0
  return 1
}

expect_get() { sed -n "s/^$1 //p" "$2" | head -1; }

cases=("${REL_ARGS[@]}")
if [ ${#cases[@]} = 0 ]; then
  for d in "$CASES_DIR"/*/; do cases+=("$(basename "$d")"); done
fi
passed=0 failed=0
report=()
for c in "${cases[@]}"; do
  dir=$CASES_DIR/$c
  [ -f "$dir/damage" ] || rel_fail "no case $c"
  WORK=$REL_TMP/work.$c
  L=$REL_TMP/log.$c
  mkdir -p "$WORK"
  cp -a "$BASE" "$L"
  : > "$WORK/problems"
  : > "$WORK/known"
  ( set -euo pipefail; export L BASE CLI TLREL WORK STREAM; source "$dir/damage" ) > "$WORK/damage.out" 2>&1 ||
    echo "DAMAGE SCRIPT FAILED: $(tail -c 400 "$WORK/damage.out")" >> "$WORK/problems"
  want=$(expect_get outcome "$dir/expect")
  KNOWN_LMDB=0
  grep -q '^known lmdb-crash' "$dir/expect" && KNOWN_LMDB=1
  want_write=$(expect_get write "$dir/expect")
  want_digest=$(expect_get digest "$dir/expect")
  bad_seq=$(expect_get bad_seq "$dir/expect")
  [ -z "$bad_seq" ] && [ -f "$WORK/bad_seq" ] && bad_seq=$(cat "$WORK/bad_seq")

  vst=$(bounded verify --json verify)
  bounded log log --json >/dev/null
  bounded stats stats --json >/dev/null
  bounded tracking --json tracking --as d-u1 >/dev/null
  verify_out=$(cat "$WORK/verify.out")
  if [ "$vst" = 0 ]; then
    got=ok
  elif [ "$vst" = 1 ] && grep -q '"first_bad_seq"' <<<"$verify_out"; then
    got=verify-fails
    seq=$(sed -n 's/.*"first_bad_seq":\([0-9]*\).*/\1/p' <<<"$verify_out")
    if [ -n "$bad_seq" ] && [ "$seq" != "$bad_seq" ]; then
      echo "verify named event $seq, the damage was in $bad_seq" >> "$WORK/problems"
    fi
  elif [ "$vst" = 1 ] && grep -q '"ok":false' <<<"$verify_out"; then
    got="error $(sed -n 's/.*"error":"\([a-z_]*\)".*/\1/p' <<<"$verify_out")"
  elif [ -s "$WORK/known" ] && [ "$vst" -gt 128 ]; then
    got=lmdb-crash
  else
    got="status $vst"
    echo "verify exited $vst: $verify_out $(head -c 300 "$WORK/verify.err")" >> "$WORK/problems"
  fi
  case "$want" in
    any) case "$got" in ok|verify-fails|error\ *|lmdb-crash) ;; *) echo "outcome $got" >> "$WORK/problems" ;; esac ;;
    "$got") ;;
    *) echo "outcome: wanted $want, got $got ($verify_out)" >> "$WORK/problems" ;;
  esac

  digest=-
  if [ "$got" = ok ]; then
    # never a silent wrong answer: what verify accepted is the base log's own events
    ref=base.events
    [ -f "$WORK/reference.events" ] && ref=$WORK/reference.events # the damage script's own log
    if ! cmp -s "$WORK/log.out" <(head -n "$(wc -l < "$WORK/log.out")" "$ref"); then
      echo "verify passed but log --json differs from the events of $ref" >> "$WORK/problems"
    fi
    if [ ! -s "$WORK/log.out" ]; then echo "verify passed on an empty log" >> "$WORK/problems"; fi
    if rel_have digest && rel_have replay; then
      live=$(timeout 60 "$CLI" -d "$L" digest 2>/dev/null | grep -oE '[0-9a-f]{64}' | head -1 || true)
      rep=$(timeout 60 "$CLI" -d "$L" replay --into "$WORK/replay" 2>/dev/null | grep -oE '[0-9a-f]{64}' | head -1 || true)
      if [ -n "$live" ] && [ "$live" = "$rep" ]; then digest=equal; else digest=mismatch; fi
      [ -z "$want_digest" ] || [ "$want_digest" = "$digest" ] ||
        echo "digest: wanted $want_digest, got $digest" >> "$WORK/problems"
    else
      digest=unavailable
    fi
  fi

  # one write on the damaged log
  wst=0
  { printf '%s\n' '{"op":"account.create","id":"after-damage","name":"After"}' |
    timeout -k 5 60 "$CLI" -d "$L" apply > "$WORK/write.out" 2> "$WORK/write.err" || wst=$?; } 2>> "$WORK/shell.err"
  if [ "$wst" = 124 ] || [ "$wst" = 137 ]; then echo "HANG: write" >> "$WORK/problems"
  elif [ "$wst" -gt 128 ]; then
    if [ "$KNOWN_LMDB" = 1 ] && lmdb_crash "$WORK/write.err" "$wst"; then
      echo "KNOWN LMDB LIMITATION: write died of signal $((wst - 128)): $(tail -c 200 "$WORK/write.err")" >> "$WORK/known"
    else
      echo "CRASH: write died of signal $((wst - 128))" >> "$WORK/problems"
    fi
  fi
  if [ "$wst" = 0 ] && grep -q '"ok":true' "$WORK/write.out"; then wrote=ok; else wrote=refused; fi
  if [ -n "$want_write" ] && [ "$want_write" != any ] && [ "$want_write" != "$wrote" ]; then
    echo "write: wanted $want_write, got $wrote ($(head -c 200 "$WORK/write.out") $(head -c 200 "$WORK/write.err"))" >> "$WORK/problems"
  fi
  if [ "$got" = ok ] && [ "$wrote" = ok ]; then
    st=$(bounded verify2 --json verify)
    [ "$st" = 0 ] || echo "verify failed after a write on a log that verified: $(cat "$WORK/verify2.out")" >> "$WORK/problems"
  fi
  line="$c: verify=$got write=$wrote digest=$digest"
  [ -s "$WORK/known" ] && line="$line ($(wc -l < "$WORK/known") crashes inside LMDB: $(head -1 "$WORK/known" | grep -o "mdb\.c:[^)]*)" | head -1))"
  if [ -s "$WORK/problems" ]; then
    failed=$((failed + 1))
    echo "FAILED $line" >&2
    sed 's/^/    /' "$WORK/problems" >&2
  else
    passed=$((passed + 1))
    rel_say "ok $line"
  fi
  report+=("$line")
  # a damage script may leave processes behind: it lists them in $WORK/pids
  if [ -f "$WORK/pids" ]; then while read -r p; do kill -KILL "$p" 2>/dev/null || true; done < "$WORK/pids"; fi
done
echo "RESULT damaged passed=$passed failed=$failed"
printf '  %s\n' "${report[@]}"
[ "$failed" = 0 ] || rel_fail "$failed damaged-log cases failed"
