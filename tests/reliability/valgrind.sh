#!/usr/bin/env bash
# valgrind.sh — memcheck over the Check suites (not in ctest: hours on 2 cores; test_rules,
# before it was split, alone took 16 minutes).
#
#   bash tests/reliability/valgrind.sh BUILD_DIR [OUT_DIR] [SUITE...]
#
# BUILD_DIR is a normal build (cmake -DTL_SANITIZE=OFF: valgrind cannot run ASan binaries).
# Each suite runs under
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
#            --trace-children=yes --child-silent-after-fork=no
# with one log per process (Check forks one process per test; the CLI tests exec the real
# binary, traced too) in OUT_DIR (default: a fresh temporary directory, kept), with
# THREADLOG_TAMPER_QUICK=1 (the quick variant of test_tamper_bytes' per-byte sweep). A test
# whose process reports an error exits 99, so Check fails it and the suite fails as well.
# Printed per suite: the suite's exit status, the processes with errors, the error count and
# the definitely lost bytes; exit 1 if any suite failed or reported an error.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: bash $0 BUILD_DIR [OUT_DIR] [SUITE...]" >&2; exit 2; }
BUILD=$(realpath "$1")
OUT=${2:-$(mktemp -d "${TMPDIR:-/tmp}/tlvg.XXXXXX")}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
shift $(($# >= 2 ? 2 : 1))
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 77; }
SUITES=("$@")
if [ ${#SUITES[@]} = 0 ]; then
  SUITES=(test_codec_golden test_codec_decoder test_codec_encoder test_codec_zeropack test_codec_json)
  SUITES+=(test_log_open test_log_format test_log_append test_log_commit_full test_log_key_leftovers test_erase_scrub test_erase_owed test_log_usage test_log_map test_log_exchange test_log_rotation test_log_failures test_log_export test_rules_table test_rules_ids test_rules_api test_rules_events test_rules_damaged_state test_authz test_malformed)
  for t in "$BUILD"/tests/test_projections_*; do SUITES+=("$(basename "$t")"); done
  SUITES+=(test_replay_live test_replay_copies test_replay_processes test_replay_damage test_replica test_tamper_bytes test_tamper_order test_tamper_keys test_tamper_checkpoint)
  SUITES+=(test_tamper_content test_tamper_free_list test_lost_database)
fi

bad=0
for s in "${SUITES[@]}"; do
  bin=$BUILD/tests/$s
  [ -x "$bin" ] || { echo "$s: not built ($bin)" >&2; bad=1; continue; }
  mkdir -p "$OUT/$s"
  rm -f "$OUT/$s"/vg.*.log
  start=$(date +%s)
  # valgrind is 20-50x slower: give Check's per-test timeout room
  (cd "$BUILD/tests" && env CK_DEFAULT_TIMEOUT=6000 THREADLOG_TAMPER_QUICK=1 \
    nice -n 19 valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --trace-children=yes --child-silent-after-fork=no --log-file="$OUT/$s/vg.%p.log" \
    "$bin" > "$OUT/$s/stdout" 2>&1)
  status=$?
  errs=0 procs=0 lost=0
  for f in "$OUT/$s"/vg.*.log; do
    [ -e "$f" ] || continue
    n=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -1)
    d=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | tail -1)
    if [ "${n:-0}" != 0 ] || [ "${d:-0}" != 0 ]; then procs=$((procs + 1)); fi
    errs=$((errs + ${n:-0}))
    lost=$((lost + ${d:-0}))
  done
  nlogs=$(find "$OUT/$s" -name 'vg.*.log' | wc -l)
  echo "$s: exit $status, $nlogs processes, $procs with reports, $errs errors, $lost bytes definitely lost ($(($(date +%s) - start)) s) — $(tail -n 3 "$OUT/$s/stdout" | grep -m1 '%:' || true)"
  if [ "$status" != 0 ] || [ "$errs" != 0 ]; then bad=1; fi
done
echo "logs: $OUT (grep -l 'ERROR SUMMARY: [1-9]' $OUT/*/vg.*.log)"
exit $bad
