#!/usr/bin/env bash
# run.sh — run one libFuzzer target for a while, from the committed seed corpus.
#
#   tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
#     TARGET: fuzz_decode | fuzz_command | fuzz_open
#     the binary: $TL_FUZZ_BIN, else build-fuzz/tests/fuzz/TARGET under the source tree
#     TL_FUZZ_WORK=DIR   keep the grown corpus and crash artifacts there (default: a temp dir,
#                        removed unless something crashed)
#     TL_FUZZ_MERGE=1    merge what the run found back into tests/fuzz/corpus/TARGET (minimised)
#     TL_FUZZ_JOBS=N     run N fuzzing processes (-fork=N); default 1
#
# Exit status: 0 when nothing crashed; 1 when it did — the input is in the work directory's
# artifacts/, printed below; copy it into tests/fuzz/regressions/TARGET/ once fixed so the
# normal test suite replays it forever (rel_fuzz_replay_*).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 TARGET SECONDS [libFuzzer flags]" >&2; exit 2; }
target=$1 seconds=$2
shift 2
bin=${TL_FUZZ_BIN:-$src/build-fuzz/tests/fuzz/$target}
[ -x "$bin" ] || { echo "no fuzz binary $bin (configure with -DCMAKE_C_COMPILER=clang-14 -DTL_FUZZ=ON)" >&2; exit 2; }
work=${TL_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/tlfuzz-run.XXXXXX")}
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$here/corpus/$target/"* "$work/corpus/" 2>/dev/null || true
cp -n "$here/regressions/$target/"* "$work/corpus/" 2>/dev/null || true
rm -f "$work/corpus/README"*
flags=(-max_total_time="$seconds" -artifact_prefix="$work/artifacts/" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048
       -max_len=4096)
[ -f "$here/$target.dict" ] && flags+=(-dict="$here/$target.dict")
[ "${TL_FUZZ_JOBS:-1}" -gt 1 ] && flags+=(-fork="$TL_FUZZ_JOBS")
status=0
( cd "$work" && "$bin" "${flags[@]}" "$@" "$work/corpus" ) > "$work/fuzz.log" 2>&1 || status=$?
grep -E '^(#[0-9]+.*DONE|stat::|Done [0-9]+ runs)' "$work/fuzz.log" | tail -8 || true
if [ $status -ne 0 ] || ls "$work/artifacts/"* >/dev/null 2>&1; then
  echo "CRASH in $target (status $status); last lines of the log:" >&2
  tail -40 "$work/fuzz.log" >&2
  ls -l "$work/artifacts/" >&2 || true
  echo "work directory kept: $work" >&2
  exit 1
fi
if [ "${TL_FUZZ_MERGE:-0}" = 1 ]; then
  mkdir -p "$work/merged"
  "$bin" -merge=1 "$work/merged" "$here/corpus/$target" "$work/corpus" > "$work/merge.log" 2>&1
  cp -n "$work/merged/"* "$here/corpus/$target/" 2>/dev/null || true
  echo "merged: $(ls "$here/corpus/$target" | wc -l) inputs in tests/fuzz/corpus/$target"
fi
[ -n "${TL_FUZZ_WORK:-}" ] || rm -rf "$work"
exit 0
