#!/usr/bin/env bash
# full_disk.sh — a log on a small file system that fills up with real data.
#
#   bash full_disk.sh CLI_PATH SOURCE_DIR      (root: mounts tmpfs; exits 77 when it cannot)
#   TL_REL_FS_MB=N  size of the file system (default 8)
#
# LMDB's map is sparse, so the disk is filled with real bytes: attachments of 1 MiB each
# (attachment.upload lines), beside a ballast file on the same file system.
#   A. `apply` over a stream with 1 MiB uploads: commits that do not fit answer `storage`
#      (with a message that says the disk is full),
#      every line is still answered, apply exits non-zero (the log failed) but leaves a log
#      that verifies; `log`, `verify` and a query work on the full disk; every acknowledged
#      command is in the log; after the file system is made bigger (remount), the lines that
#      failed are sent again and succeed; projections equal a fresh replay.
#   B. in one process (tlrel diskfull), with a small first map so that map growth and the
#      full disk meet: upload until `storage`, read and verify in the same process, delete the
#      ballast, write again.
source "$(dirname "$0")/lib.sh"

MB=${TL_REL_FS_MB:-8}
[ "$(id -u)" = 0 ] || rel_skip "mounting a tmpfs needs root"
FS=$REL_TMP/fs
mkdir -p "$FS"
if ! err=$(mount -t tmpfs -o "size=${MB}m,mode=0700" tmpfs "$FS" 2>&1); then
  rel_skip "cannot mount a tmpfs here ($err)"
fi
REL_CLEANUP+=("umount -l '$FS'")
cd "$REL_TMP"

# ---------------------------------------------------------------- A: apply on a full disk
rel_say "A: apply with 1 MiB uploads on a ${MB} MiB file system"
L=$FS/log
"$CLI" init "$L" >/dev/null
head -c $((1024 * 1024)) /dev/urandom > "$FS/ballast"
"$TLREL" gen --prefix d --lines 500 --seed 11 --attach-bytes 1048576 --big-every 1 > stream.jsonl
total=$(grep -cv '^[[:space:]]*$' stream.jsonl)
status=0
"$CLI" -d "$L" apply --sync-every 10 stream.jsonl > ack.1 2> err.1 || status=$?
answered=$("$TLREL" count ack.1)
storage=$(grep -c '"error":"storage"' ack.1 || true)
ok=$(grep -c '"ok":true' ack.1 || true)
rel_say "A: $answered of $total lines answered, $ok ok, $storage storage failures, apply exit $status; df: $(df -k "$FS" | awk 'NR==2{print $4" KiB free"}')"
[ "$answered" = "$total" ] || rel_fail "apply answered $answered of $total lines on a full disk"
[ "$storage" -gt 0 ] || rel_fail "the disk never filled (no storage answer): raise the stream or lower TL_REL_FS_MB"
[ "$status" != 0 ] || rel_fail "apply exited 0 although commits failed (the spec: non-zero when the log itself failed)"
grep -q . err.1 || rel_say "A: note: apply exited $status with nothing on stderr (the reason is only in the result lines)"
# the operator must learn that the disk is full (LMDB reports a write cut short as EIO)
# ... every one of them, also the commands of a commit group that failed while a command was
# written (not at commit): each answer carries the first failure's detail. (grep -c, not
# `grep | grep -q`: under pipefail the first grep's SIGPIPE would fail the pipeline at random)
full=$(grep '"error":"storage"' ack.1 | grep -c 'the disk is full' || true)
[ "$full" = "$storage" ] ||
  rel_fail "$((storage - full)) of $storage storage answers on a full disk do not say so: $(grep '"error":"storage"' ack.1 | grep -v 'the disk is full' | head -n 1)"

# reads on the full disk
events_full=$(rel_verify "$L")
"$CLI" -d "$L" log --json > events.full.jsonl || rel_fail "log on a full disk failed"
"$CLI" -d "$L" --json tracking --as d-u1 > tracking.json 2>&1 || rel_fail "tracking query on a full disk: $(cat tracking.json)"
"$TLREL" check --events events.full.jsonl --allow storage,invalid_input,not_found,forbidden,exists,deleted,channel_unavailable,has_replies,already_pinned,not_pinned,too_many_attachments,conflict,too_large \
  --stream stream.jsonl --run 0:ack.1 > check.1 || rel_fail "after the disk filled: $(cat check.1)"
rel_say "A: full disk: verify ok ($events_full events), log and tracking work, every acknowledged command is there"

# more room, and the client sends again what failed
mount -o "remount,size=$((MB * 8))m" "$FS" || rel_fail "cannot grow the tmpfs"
paste -d '\t' <(grep -v '^[[:space:]]*$' stream.jsonl) ack.1 | awk -F'\t' 'index($2, "\"error\":\"storage\"") { print $1 }' > retry.jsonl
retries=$(wc -l < retry.jsonl)
"$CLI" -d "$L" apply --sync-every 10 retry.jsonl > ack.2 2> err.2 || rel_fail "apply after the disk grew: $(head -c 400 err.2)"
! grep -q '"error":"storage"' ack.2 || rel_fail "storage failures after the disk grew: $(grep -m1 storage ack.2)"
events_after=$(rel_verify "$L")
"$CLI" -d "$L" log --json > events.jsonl
summary=$("$TLREL" check --events events.jsonl --allow storage,invalid_input,not_found,forbidden,exists,deleted,channel_unavailable,has_replies,already_pinned,not_pinned,too_many_attachments,conflict,too_large \
  --stream stream.jsonl --run 0:ack.1 --stream retry.jsonl --run 0:ack.2) || rel_fail "after the retry: $summary"
digest=$(rel_digest_check "$L")
rel_say "A: $retries failed lines sent again and applied; $events_after events; digest $digest"
echo "RESULT full_disk_apply fs=${MB}MiB storage_failures=$storage retried=$retries events=$events_after verify=ok digest=$digest summary=$summary"

# ---------------------------------------------------------------- B: one process, map growth
rel_say "B: one process fills the disk (first map 1 MiB: it grows as the disk fills)"
rm -rf "$L" "$FS/ballast"
mount -o "remount,size=${MB}m" "$FS" || rel_fail "cannot shrink the tmpfs back"
L2=$FS/log2
"$CLI" init "$L2" >/dev/null
printf '%s\n' '{"op":"account.create","id":"b","name":"B"}' \
  '{"op":"user.create","id":"b-u1","role":"member","account":"b","name":"U"}' \
  '{"op":"project.create","as":"b-u1","id":"b-p1","account":"b","type":"order","title":"P"}' |
  "$CLI" -d "$L2" apply > setup.ack
head -c $((2 * 1024 * 1024)) /dev/urandom > "$FS/ballast"
out=$(THREADLOG_TEST_MAP_BYTES=1048576 "$TLREL" diskfull "$L2" --as b-u1 --project b-p1 --ballast "$FS/ballast" 2>&1) ||
  rel_fail "in-process full disk: $out"
events_b=$(rel_verify "$L2")
digest_b=$(rel_digest_check "$L2")
rel_say "B: $out; verify ok ($events_b events); digest $digest_b"
echo "RESULT full_disk_process $out verify=ok digest=$digest_b"

# ---------------------------------------------------------------- C: a preview on a small disk
# `replay --until-seq` in place builds a copy beside the log: on a disk without room for it,
# refused (storage) before anything is written, so the live log keeps its room
rel_say "C: an in-place preview on a ${MB} MiB file system is refused, nothing left behind"
digest_c=$("$CLI" -d "$L2" digest)
status=0
out=$("$CLI" -d "$L2" --json replay --until-seq 3 2>&1) || status=$?
[ "$status" = 1 ] && grep -q '"error":"storage"' <<< "$out" && grep -q 'free beside the log' <<< "$out" ||
  rel_fail "a preview without room: exit $status, $out"
! ls -d "$L2".until-* > /dev/null 2>&1 || rel_fail "a refused preview left its copy"
[ "$("$CLI" -d "$L2" digest)" = "$digest_c" ] || rel_fail "a refused preview moved the digest"
echo "RESULT full_disk_preview refused=storage"
