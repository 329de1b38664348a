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
# A transient fault (failing once) must cost one commit group and no more: the same `apply`
# process goes on writing the lines after it (no `storage` beyond that group, no MDB_PANIC).
#
# Then the meta sweep: the Nth write of one of LMDB's meta pages (the write that makes a
# commit current; when it fails LMDB marks the environment fatal and every later transaction
# of the process answers MDB_PANIC until it reopens) fails, once or for good, while `tlrel
# faultprobe` plays apply in one process. After every failed commit the same process must
# read (the whole log, verify, the digest, a query); at the end it sends the failed lines
# again and, the fault being over, they must succeed; then the same checks from outside.
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

runs=0 injected=0 storage_total=0 acked_total=0 panics=0 meta_faults=0 transient_resumed=0
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
    off=$(sed -n 's/^faultfs: .* at offset \([0-9]*\)).*/\1/p' "$w/err" | head -1)
    [ -n "$off" ] && [ "$off" -lt 8192 ] && meta_faults=$((meta_faults + 1))
    if [ "$count" = 1 ]; then
      # a transient fault fails the commit group it hits, and the same process goes on writing
      ! grep -q 'MDB_PANIC' "$w/ack" || rel_fail "$what: the writer stayed broken after a transient fault: $(grep -m1 MDB_PANIC "$w/ack")"
      [ "$storage" -le 7 ] || rel_fail "$what: a transient fault failed $storage lines (more than its commit group of 7)"
      transient_resumed=$((transient_resumed + 1))
    fi
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
# every planned fault lies within a clean run's writes and syncs, so nearly every run must
# have met its fault: a shim that stopped matching would otherwise pass having tested nothing
[ $((injected * 10)) -ge $((runs * 9)) ] || rel_fail "only $injected of $runs runs met their fault"
rel_say "faults: $runs runs, $injected with a fault injected ($meta_faults on a meta page), $storage_total storage answers, $acked_total acknowledged, all verified and recovered"

# ---------------------------------------------------------------- the meta sweep (one process)
metas=$(rm -rf probe && cp -a base probe &&
  LD_PRELOAD=$FAULTFS TL_FAULT_STATS=1 TL_FAULT_OPS=meta TL_FAULT_AFTER=100000000 \
    "$TLREL" faultprobe probe stream.jsonl --ack probe.ack --retry probe.retry --retry-ack probe.ack2 2>&1 >/dev/null |
  sed -n 's/^faultfs: \([0-9]*\) matching.*/\1/p')
[ "${metas:-0}" -gt 0 ] || rel_fail "the shim saw no meta page writes"
mplan=()
if [ "$FULL" = 1 ]; then
  for e in ENOSPC EIO; do for c in 1 -1; do mplan+=("$e $c $(seq -s' ' 0 $((metas - 1)))"); done; done
else
  mplan+=("ENOSPC 1 $(seq -s' ' 0 $((metas - 1)))")
  mplan+=("EIO 1 0 $((metas / 2))")
  mplan+=("EIO -1 $((metas / 3))")
fi
mruns=0 mfailed_groups=0 mreads=0 mresumed=0
for p in "${mplan[@]}"; do
  read -r err count afters <<<"$p"
  for after in $afters; do
    mruns=$((mruns + 1))
    w=meta.$mruns
    rm -rf "$w" && mkdir "$w" && cp -a base "$w/log"
    what="meta write #$after $err x$count"
    st=0
    { LD_PRELOAD=$FAULTFS TL_FAULT_OPS=meta TL_FAULT_ERRNO=$err TL_FAULT_COUNT=$count TL_FAULT_AFTER=$after \
        "$TLREL" faultprobe "$w/log" stream.jsonl --ack "$w/ack" --retry "$w/retry" --retry-ack "$w/ack2" \
        > "$w/summary" 2> "$w/err" || st=$?; } 2>/dev/null
    [ "$st" = 0 ] || rel_fail "$what: the process could not go on reading after the failed commit (exit $st): $(tail -c 400 "$w/err")"
    grep -q '^faultfs:' "$w/err" || rel_fail "$what: no fault was injected (the clean run made $metas meta writes)"
    answered=$("$TLREL" count "$w/ack")
    [ "$answered" = "$total" ] || rel_fail "$what: $answered of $total lines answered"
    ! grep -q 'MDB_PANIC' "$w/ack" "$w/ack2" || rel_fail "$what: MDB_PANIC reached a client: $(grep -m1 -h MDB_PANIC "$w/ack" "$w/ack2")"
    fg=$(sed -n 's/.*"failed_groups":\([0-9]*\).*/\1/p' "$w/summary")
    rd=$(sed -n 's/.*"reads_after_failure":\([0-9]*\).*/\1/p' "$w/summary")
    [ "${fg:-0}" -gt 0 ] || rel_fail "$what: no commit failed: $(cat "$w/summary")"
    mfailed_groups=$((mfailed_groups + fg))
    mreads=$((mreads + rd))
    if [ "$count" = 1 ]; then
      # the fault is over: the same process must write again (the retried lines all succeed)
      [ "$fg" = 1 ] || rel_fail "$what: a transient fault failed $fg commit groups"
      ! grep -q '"error":"storage"' "$w/ack2" || rel_fail "$what: the same process could not write after the fault cleared: $(grep -m1 storage "$w/ack2")"
      mresumed=$((mresumed + 1))
    fi
    out=$("$CLI" -d "$w/log" --json verify 2>&1) || rel_fail "$what: the log does not verify: $out"
    "$CLI" -d "$w/log" log --json > "$w/events"
    "$TLREL" check --events "$w/events" --allow "$ALLOW" --stream stream.jsonl --run "0:$w/ack" --stream "$w/retry" --run "0:$w/ack2" > "$w/check" ||
      rel_fail "$what: $(cat "$w/check")"
    d=$(rel_digest_check "$w/log")
    [ "$d" = equal ] || [ "$d" = unavailable ] || rel_fail "$what: digest $d"
    rm -rf "$w"
  done
done
rel_say "faults: meta sweep: $mruns runs ($metas meta writes in a clean run), $mfailed_groups failed commits, the same process read after each ($mreads), $mresumed transient runs wrote again"
echo "RESULT faults runs=$runs injected=$injected meta_faults=$meta_faults panicked_writers=$panics transient_resumed=$transient_resumed storage_answers=$storage_total acknowledged=$acked_total meta_runs=$mruns meta_failed_commits=$mfailed_groups reads_after_failure=$mreads meta_resumed=$mresumed lost=0 verify=ok digest=$(rel_digest_check base)"
