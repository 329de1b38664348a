#!/usr/bin/env bash
# faults.sh — the storage failing in the middle of commits (fault injection, as SQLite does).
#
#   bash faults.sh CLI_PATH SOURCE_DIR      TL_REL_FULL=1: every injection point, both errnos
#
# A preloaded shim (faultfs.so, $TL_FAULTFS or beside tlrel) makes the Nth write or sync of
# data.mdb fail with ENOSPC or EIO — once (a transient failure) or from then on (a dead
# disk) — while `apply` runs a stream in commit groups of 7. The sweep moves N over every
# write and sync a clean run makes (145 writes and 18 syncs for this stream). Each time:
# the writer must answer every line and not crash; a fresh process must find a log that
# verifies and holds every acknowledged command (tlrel check); the lines that got `storage`
# are then sent again without the fault and must succeed; verify, and digest = replay.
source "$(dirname "$0")/lib.sh"
FULL=${TL_REL_FULL:-0}
FAULTFS=${TL_FAULTFS:-$(dirname "$TLREL")/libfaultfs.so}
[ -f "$FAULTFS" ] || rel_fail "no fault shim at $FAULTFS (build the target faultfs or set TL_FAULTFS)"
# an ASan-built CLI insists that its runtime comes first among preloaded libraries
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
cd "$REL_TMP"

"$TLREL" gen --prefix f --lines 120 --seed 5 --attach-bytes 6000 --big-every 3 > stream.jsonl
total=$(grep -cv '^[[:space:]]*$' stream.jsonl)
"$CLI" init base >/dev/null
rm -f base/lock.mdb
ALLOW=storage,invalid_input,not_found,forbidden,exists,deleted,channel_unavailable,has_replies,already_pinned,not_pinned,too_many_attachments,conflict,too_large

# how many writes and syncs a clean run makes
counts() {
  rm -rf probe && cp -a base probe
  LD_PRELOAD=$FAULTFS TL_FAULT_STATS=1 TL_FAULT_OPS=$1 TL_FAULT_AFTER=100000000 \
    "$CLI" -d probe apply --sync-every 7 stream.jsonl 2>&1 >/dev/null | sed -n 's/^faultfs: \([0-9]*\) matching.*/\1/p'
}
writes=$(counts write)
syncs=$(counts sync)
[ "${writes:-0}" -gt 0 ] && [ "${syncs:-0}" -gt 0 ] || rel_fail "the shim saw no writes or syncs (writes=$writes syncs=$syncs)"
rel_say "faults: a clean run makes $writes writes and $syncs syncs of data.mdb"

# plan: OPS ERRNO COUNT AFTER...
plan=()
if [ "$FULL" = 1 ]; then
  for e in ENOSPC EIO; do for c in 1 -1; do
    plan+=("write $e $c $(seq -s' ' 0 $((writes - 1)))")
    plan+=("sync $e $c $(seq -s' ' 0 $((syncs - 1)))")
  done; done
else
  plan+=("write ENOSPC 1 $(seq -s' ' 0 5 $((writes - 1)))")
  plan+=("write EIO -1 $(seq -s' ' 0 20 $((writes - 1)))")
  plan+=("sync EIO 1 $(seq -s' ' 0 $((syncs - 1)))")
  plan+=("sync ENOSPC -1 0 $((syncs / 2)) $((syncs - 1))")
fi

runs=0 injected=0 storage_total=0 acked_total=0 panics=0
for p in "${plan[@]}"; do
  read -r ops err count afters <<<"$p"
  for after in $afters; do
    runs=$((runs + 1))
    w=run.$runs
    rm -rf "$w" && mkdir "$w" && cp -a base "$w/log"
    st=0
    { LD_PRELOAD=$FAULTFS TL_FAULT_OPS=$ops TL_FAULT_ERRNO=$err TL_FAULT_COUNT=$count TL_FAULT_AFTER=$after \
        "$CLI" -d "$w/log" apply --sync-every 7 stream.jsonl > "$w/ack" 2> "$w/err" || st=$?; } 2>/dev/null
    what="$ops #$after $err x$count"
    [ "$st" -le 1 ] || rel_fail "$what: apply exited $st: $(tail -c 300 "$w/err")"
    grep -q '^faultfs:' "$w/err" || continue
    injected=$((injected + 1))
    answered=$("$TLREL" count "$w/ack")
    [ "$answered" = "$total" ] || rel_fail "$what: $answered of $total lines answered: $(tail -c 300 "$w/err")"
    storage=$(grep -c '"error":"storage"' "$w/ack" || true)
    [ "$storage" -gt 0 ] || [ "$st" = 0 ] || rel_fail "$what: apply failed but no line says storage"
    grep -q 'MDB_PANIC\|fatal' "$w/ack" && panics=$((panics + 1))
    storage_total=$((storage_total + storage))
    acked_total=$((acked_total + $(grep -c '"ok":true' "$w/ack" || true)))
    out=$("$CLI" -d "$w/log" --json verify 2>&1) || rel_fail "$what: the log does not verify: $out"
    "$CLI" -d "$w/log" log --json > "$w/events"
    "$TLREL" check --events "$w/events" --allow "$ALLOW" --stream stream.jsonl --run "0:$w/ack" > "$w/check" ||
      rel_fail "$what: $(cat "$w/check")"
    # the client sends again what failed, with the disk healthy
    paste -d '\t' <(grep -v '^[[:space:]]*$' stream.jsonl) "$w/ack" | awk -F'\t' 'index($2, "\"error\":\"storage\"") { print $1 }' > "$w/retry"
    "$CLI" -d "$w/log" apply --sync-every 7 "$w/retry" > "$w/ack2" 2> "$w/err2" || rel_fail "$what: apply after the fault: $(cat "$w/err2")"
    ! grep -q '"error":"storage"' "$w/ack2" || rel_fail "$what: storage again without a fault"
    out=$("$CLI" -d "$w/log" --json verify 2>&1) || rel_fail "$what: after the retry the log does not verify: $out"
    "$CLI" -d "$w/log" log --json > "$w/events"
    "$TLREL" check --events "$w/events" --allow "$ALLOW" --stream stream.jsonl --run "0:$w/ack" --stream "$w/retry" --run "0:$w/ack2" > "$w/check" ||
      rel_fail "$what: after the retry: $(cat "$w/check")"
    d=$(rel_digest_check "$w/log")
    [ "$d" = equal ] || [ "$d" = unavailable ] || rel_fail "$what: digest $d"
    rm -rf "$w"
  done
done
rel_say "faults: $runs runs, $injected with a fault injected, $storage_total storage answers, $acked_total acknowledged, all verified and recovered"
echo "RESULT faults runs=$runs injected=$injected panicked_writers=$panics storage_answers=$storage_total acknowledged=$acked_total lost=0 verify=ok digest=$(rel_digest_check base)"
