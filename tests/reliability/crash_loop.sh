#!/usr/bin/env bash
# crash_loop.sh — SIGKILL a writer at random moments, restart it on the rest of its input,
# and prove that no acknowledged command is lost and the log always verifies.
#
#   bash crash_loop.sh CLI_PATH SOURCE_DIR [--nosync]
#   TL_REL_KILLS=N (default 8; 60 with TL_REL_FULL=1)  TL_REL_LINES=N (3000; 20000)
#   TL_REL_SEED=N (random when unset; printed so a failure can be replayed)
#
# A client runs `threadlog apply` over a long generated stream and keeps its result lines:
# a complete result line is an acknowledgement. The test kills the writer with SIGKILL after
# a random delay (sometimes while it opens the log, mostly mid-stream, with commit groups of
# 1 to 1000 commands), checks `verify` after every kill, and restarts `apply` on the lines
# not yet acknowledged — as a client that lost its answers retries. At the end `tlrel check`
# proves from the outside: every acknowledged result is in the log at its sequence with its
# id; every event in the log comes from a line that was sent, and one that was not
# acknowledged comes from a line whose answer was lost; nothing was created twice (retries
# of created ids answer "duplicate"); every line was answered exactly once. Then the
# projection digest is compared with a fresh replay's, when the CLI has those commands.
# With --nosync the log may lose a tail on a machine crash (not on a process kill, which is
# what this test does): losses are counted and reported, and verify must still pass.
source "$(dirname "$0")/lib.sh"

NOSYNC=""
for a in "${REL_ARGS[@]}"; do [ "$a" = --nosync ] && NOSYNC=--nosync; done
FULL=${TL_REL_FULL:-0}
KILLS=${TL_REL_KILLS:-$([ "$FULL" = 1 ] && echo 60 || echo 8)}
LINES=${TL_REL_LINES:-$([ "$FULL" = 1 ] && echo 20000 || echo 3000)}
SEED=${TL_REL_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
rel_say "crash loop: kills=$KILLS lines=$LINES seed=$SEED ${NOSYNC:-synced}"

L=$REL_TMP/log
"$CLI" init "$L" >/dev/null
cd "$REL_TMP"

checks=()      # --stream FILE --run START:ACKS ... for tlrel check
kills=0 runs=0 round=0 verifies=0 digests=0
DIGEST_EVERY=$([ "$FULL" = 1 ] && echo 5 || echo 1)
while :; do
  round=$((round + 1))
  stream=stream.$round.jsonl
  "$TLREL" gen --prefix "c$round" --lines "$LINES" --seed "$((SEED + round))" > "$stream"
  total=$(grep -cv '^[[:space:]]*$' "$stream" || true)
  checks+=(--stream "$stream")
  start=0
  while [ "$start" -lt "$total" ]; do
    runs=$((runs + 1))
    ack=ack.$runs
    "$TLREL" rest "$stream" "$start" > rest.jsonl
    group=$(( $(rel_rand 0 4) ))
    group=$(echo "1 3 20 100 1000" | cut -d' ' -f$((group + 1)))
    "$CLI" -d "$L" apply --sync-every "$group" $NOSYNC rest.jsonl > "$ack" 2> "err.$runs" &
    pid=$!
    if [ "$kills" -lt "$KILLS" ]; then
      # a few kills land while the log is opened or the first group runs; most mid-stream
      if [ "$(rel_rand 0 9)" = 0 ]; then delay=$(rel_rand 1 15); else delay=$(rel_rand 20 600); fi
      rel_sleep_ms "$delay"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    status=0
    wait "$pid" 2>/dev/null || status=$?
    acked=$("$TLREL" count "$ack")
    checks+=(--run "$start:$ack")
    start=$((start + acked))
    if [ "$status" = 137 ]; then
      kills=$((kills + 1))
      rel_verify "$L" >/dev/null
      verifies=$((verifies + 1))
      # the projections left by a killed writer equal a fresh replay (every kill at CI size)
      # (an assignment, not a test of $(...): a failure inside must end the script, set -e)
      if [ $((kills % DIGEST_EVERY)) = 0 ]; then
        d=$(rel_digest_check "$L")
        [ "$d" = equal ] || rel_fail "after kill $kills the projections differ from a replay: $d"
        digests=$((digests + 1))
      fi
    elif [ "$status" != 0 ]; then
      rel_fail "apply exited $status without being killed: $(head -c 500 "err.$runs")"
    elif [ "$start" -ne "$total" ]; then
      rel_fail "apply finished but answered $start of $total lines"
    fi
  done
  [ "$kills" -lt "$KILLS" ] || break
done

# Other writers killed mid-way: an in-place `replay` (projections rebuilt and swapped in one
# transaction) and `key rotate` (key.rotated committed, then the key file renamed). After
# each kill the log verifies, the projections still equal a fresh replay, and the log stays
# writable with the key it names.
OTHER=$([ "$FULL" = 1 ] && echo 10 || echo 3)
other_kills=0
before=$("$CLI" -d "$L" digest | grep -oE '[0-9a-f]{64}' | head -1)
for ((i = 0; i < OTHER; i++)); do
  "$CLI" -d "$L" replay > /dev/null 2>&1 &
  pid=$!
  rel_sleep_ms "$(rel_rand 2 120)"
  kill -KILL "$pid" 2>/dev/null || true
  st=0; wait "$pid" 2>/dev/null || st=$?
  [ "$st" = 0 ] || [ "$st" = 137 ] || rel_fail "replay exited $st"
  [ "$st" = 137 ] && other_kills=$((other_kills + 1))
  rel_verify "$L" >/dev/null
  now=$("$CLI" -d "$L" digest | grep -oE '[0-9a-f]{64}' | head -1)
  [ "$now" = "$before" ] || rel_fail "a killed in-place replay changed the projection digest ($before -> $now)"
done
for ((i = 0; i < OTHER; i++)); do printf '{"op":"account.create","id":"after-rotate-%d","name":"R"}\n' "$i"; done > rotate.jsonl
checks+=(--stream rotate.jsonl)
for ((i = 0; i < OTHER; i++)); do
  "$CLI" -d "$L" key rotate > /dev/null 2>&1 &
  pid=$!
  rel_sleep_ms "$(rel_rand 0 15)"
  kill -KILL "$pid" 2>/dev/null || true
  st=0; wait "$pid" 2>/dev/null || st=$?
  [ "$st" = 0 ] || [ "$st" = 137 ] || rel_fail "key rotate exited $st"
  [ "$st" = 137 ] && other_kills=$((other_kills + 1))
  rel_verify "$L" >/dev/null
  sed -n "$((i + 1))p" rotate.jsonl | "$CLI" -d "$L" apply > "rotack.$i" 2>&1 ||
    rel_fail "the log is not writable after a killed key rotation: $(cat "rotack.$i")"
  grep -q '"ok":true' "rotack.$i" || rel_fail "write after a killed key rotation: $(cat "rotack.$i")"
  checks+=(--run "$i:rotack.$i")
done

events=$(rel_verify "$L")
"$CLI" -d "$L" log --json > events.jsonl
check_opts=(--other-kind key.rotated)
[ -n "$NOSYNC" ] && check_opts+=(--lost-ok)
summary=$("$TLREL" check --events events.jsonl "${check_opts[@]}" "${checks[@]}") ||
  rel_fail "the log does not hold what was acknowledged (seed $SEED): $summary"
digest=$(rel_digest_check "$L")
rel_say "kills=$kills (+$other_kills replay/key rotate) runs=$runs verifies-after-kill=$verifies digests-after-kill=$digests events=$events digest=$digest"
echo "RESULT crash_loop${NOSYNC:+_nosync} kills=$kills other_kills=$other_kills runs=$runs verify=ok(after each kill) digest=$digest(+$digests after kills) summary=$summary"
