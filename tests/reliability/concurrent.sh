#!/usr/bin/env bash
# concurrent.sh — several writer and reader processes on one log at once.
#
#   bash concurrent.sh CLI_PATH SOURCE_DIR
#   TL_REL_WRITERS=N (default 3)  TL_REL_READERS=N (2)  TL_REL_LINES=N per writer (1500; 6000 full)
#   TL_REL_FULL=1 for the long run
#
# Writers: `apply` processes over their own streams (distinct accounts and ids), with commit
# groups of 1, 10 and 100 lines, plus one writer that starts a new `apply` process for every
# line (opening and closing the log beside the others each time). Readers (tlrel reader):
# `log --json` snapshots that must be gap-free prefixes that only grow and never change, and
# the tracking table and a project's chat as a member sees them, which must lie between the
# snapshot before and the snapshot after the query (a reader never sees a projection without
# its event, nor an event without its projection); `verify` now and then while writers run.
# At the end: every line was answered exactly once, every event after the genesis was
# acknowledged by exactly one answer (sequence numbers are gap-free: verify), verify passes,
# and the projection digest equals a fresh replay's.
source "$(dirname "$0")/lib.sh"

FULL=${TL_REL_FULL:-0}
WRITERS=${TL_REL_WRITERS:-3}
READERS=${TL_REL_READERS:-2}
LINES=${TL_REL_LINES:-$([ "$FULL" = 1 ] && echo 6000 || echo 1500)}
SEED=${TL_REL_SEED:-$(( $(date +%s) % 100000 ))}
rel_say "concurrent: $WRITERS apply writers + 1 process-per-line writer, $READERS readers, $LINES lines each, seed $SEED"

L=$REL_TMP/log
"$CLI" init "$L" >/dev/null
cd "$REL_TMP"
groups=(1 10 100 1000)
pids=()
checks=()
for ((w = 1; w <= WRITERS; w++)); do
  "$TLREL" gen --prefix "w$w" --lines "$LINES" --seed "$((SEED + w))" > "stream.w$w"
  checks+=(--stream "stream.w$w" --run "0:ack.w$w")
done
# the process-per-line writer: a short stream, one `apply` process per line
"$TLREL" gen --prefix "w0" --lines "$(( LINES / 10 ))" --seed "$SEED" > stream.w0
checks+=(--stream stream.w0 --run 0:ack.w0)

touch running
for ((w = 1; w <= WRITERS; w++)); do
  "$CLI" -d "$L" apply --sync-every "${groups[$(( (w - 1) % 4 ))]}" "stream.w$w" > "ack.w$w" 2> "err.w$w" &
  pids+=($!)
done
( while IFS= read -r line; do
    [ -n "${line//[[:space:]]/}" ] || continue
    printf '%s\n' "$line" | "$CLI" -d "$L" apply
  done < stream.w0 > ack.w0 2> err.w0 ) &
pids+=($!)
rpids=()
for ((r = 1; r <= READERS; r++)); do
  w=$(( (r - 1) % WRITERS + 1 ))
  "$TLREL" reader --cli "$CLI" --dir "$L" --as "w$w-u1" --account "w$w" --project "w$w-p0" \
    --seconds 600 --stop-file stopped > "reader.$r" 2> "reader.$r.err" &
  rpids+=($!)
done
fail=""
for p in "${pids[@]}"; do wait "$p" || fail="$fail writer($p) exited $?"; done
touch stopped
for ((r = 1; r <= READERS; r++)); do
  wait "${rpids[$((r - 1))]}" || fail="$fail reader $r: $(head -c 600 "reader.$r.err")"
done
[ -z "$fail" ] || rel_fail "$fail"

events=$(rel_verify "$L")
"$CLI" -d "$L" log --json > events.jsonl
summary=$("$TLREL" check --events events.jsonl --exactly-once "${checks[@]}") ||
  rel_fail "exactly-once check (seed $SEED): $summary"
digest=$(rel_digest_check "$L")
readers=$(cat reader.* 2>/dev/null | grep -h '^{' | tr '\n' ' ')
rel_say "events=$events verify=ok digest=$digest"
echo "RESULT concurrent writers=$((WRITERS + 1)) readers=$READERS events=$events verify=ok digest=$digest summary=$summary readers=[$readers]"
