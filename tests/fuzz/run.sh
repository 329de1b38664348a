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
bin=$(realpath "$bin")
work=${TL_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/tlfuzz-run.XXXXXX")}
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$here/corpus/$target/"* "$work/corpus/" 2>/dev/null || true
cp -n "$here/regressions/$target/"* "$work/corpus/" 2>/dev/null || true
rm -f "$work/corpus/README"*
flags=(-max_total_time="$seconds" -artifact_prefix="$work/artifacts/" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
       -max_len=4096)
[ -f "$here/$target.dict" ] && flags+=(-dict="$here/$target.dict")
# LMDB follows page numbers and node flags of a damaged file without checks, so fuzz_open
# meets crashes inside liblmdb itself, and SIGBUS wherever a value LMDB handed out points
# past the end of the file (tests/fuzz/README.md). Those are counted and kept, not failures:
# the run goes on (-fork, -ignore_crashes) and each crash is replayed to see where it
# happened; so is each hang: one caught inside a liblmdb call is the same limitation (LMDB
# descending a cycle of damaged branch pages); any other crash or hang fails the run.
known_lmdb=${TL_FUZZ_KNOWN_LMDB:-$([ "$target" = fuzz_open ] && echo 1 || echo 0)}
jobs=${TL_FUZZ_JOBS:-1}
if [ "$jobs" -gt 1 ] || [ "$known_lmdb" = 1 ]; then flags+=(-fork="$jobs"); fi
[ "$known_lmdb" = 1 ] && flags+=(-ignore_crashes=1)
shm=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/tlfuzz-tmp.XXXXXX")
export TL_FUZZ_TMP=$shm
status=0
( cd "$work" && "$bin" "${flags[@]}" "$@" "$work/corpus" ) > "$work/fuzz.log" 2>&1 || status=$?
grep -E '^(#[0-9]+.*DONE|stat::|Done [0-9]+ runs)|^#[0-9]+: cov' "$work/fuzz.log" | tail -8 || true
if [ "$known_lmdb" = 1 ]; then
  lmdb=0 ours=0 unrepro=0
  for a in "$work/artifacts/"crash-* "$work/artifacts/"leak-* "$work/artifacts/"timeout-* "$work/artifacts/"oom-*; do
    [ -e "$a" ] || continue
    # the first frame that is not the sanitizer's, libFuzzer's or libc's (abort, raise)
    frame='^ +#[0-9]+ '
    # (an allocator's frame is the sanitizer's interceptor: who called it decides)
    skip='__sanitizer|fuzzer::|__asan|__ubsan|__interceptor|InterceptorCommon|libc\.so|nptl/|sysdeps/|stdlib/|signal/| in (malloc|calloc|realloc|posix_memalign|aligned_alloc) '
    # replayed up to three times: an input that crashed inside the fuzzing process may not
    # crash alone (README.md, "unreproduced")
    replayed=0 report=
    for try in 1 2 3; do
      if report=$(UBSAN_OPTIONS=print_stacktrace=1 "$bin" -runs=1 -timeout=10 "$a" 2>&1); then continue; fi
      replayed=1
      break
    done
    if [ "$replayed" = 0 ]; then
      unrepro=$((unrepro + 1)); mkdir -p "$work/unreproduced"; mv "$a" "$work/unreproduced/"
      echo "warning: $a did not crash or hang when replayed alone (3 tries): kept in $work/unreproduced" >&2
      continue
    fi
    top=$(grep -E "$frame" <<<"$report" | grep -vE "$skip" | head -1 || true)
    # UBSan names the line of ours it stopped at (liblmdb is not instrumented): always ours.
    # (Without it, a report with no stack was counted as "not reproduced".)
    ub=$(grep -m1 'runtime error:' <<<"$report" || true)
    [ -n "$ub" ] && top="ubsan: $ub"
    if [ "${a##*/timeout-}" != "$a" ]; then
      # a hang caught inside one liblmdb call is LMDB descending a cycle of damaged pages
      # (README.md: no bound of ours can interrupt it); anywhere else it is ours: some loop
      # of ours did not bound its walk
      case "$top" in
        *liblmdb.so*) top="lmdb-hang: $top" ;;
        *) top=$(grep -E "$frame" <<<"$report" | grep -vE "$skip" | grep -m1 ' in tl_' || true)
           top="hang: ${top:-not reproduced}" ;;
      esac
    elif grep -q 'AddressSanitizer: BUS' <<<"$report"; then
      top="sigbus: $top"
    fi
    case "$top" in
      hang:*) ours=$((ours + 1)); echo "$a: $top" >&2 ;;
      lmdb-hang:*) lmdb=$((lmdb + 1)); mkdir -p "$work/known-lmdb"; mv "$a" "$work/known-lmdb/hang-${a##*/}" ;;
      sigbus:*) lmdb=$((lmdb + 1)); mkdir -p "$work/known-lmdb"; mv "$a" "$work/known-lmdb/sigbus-${a##*/}" ;;
      *liblmdb.so*) lmdb=$((lmdb + 1)); mkdir -p "$work/known-lmdb"; mv "$a" "$work/known-lmdb/" ;;
      *) ours=$((ours + 1)); echo "crash outside liblmdb: $a: ${top:-not reproduced}" >&2 ;;
    esac
  done
  echo "crashes inside liblmdb (known limitation, kept in $work/known-lmdb): $lmdb; elsewhere: $ours;" \
       "not reproduced alone (not failures, kept in $work/unreproduced): $unrepro"
  [ "$ours" = 0 ] && status=0
fi
rm -rf "$shm"
# a slow unit (over -report_slow_units seconds) is worth a look, not a failure
for a in "$work/artifacts/"slow-unit-*; do [ -e "$a" ] && mkdir -p "$work/slow" && mv "$a" "$work/slow/"; done
[ -d "$work/slow" ] && echo "slow inputs (not failures) kept in $work/slow: $(ls "$work/slow" | wc -l)"
if [ $status -ne 0 ] || ls "$work/artifacts/"* >/dev/null 2>&1; then
  echo "FAILED: $target found a crash, a leak or a timeout (status $status); last lines of the log:" >&2
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
[ -n "${TL_FUZZ_WORK:-}" ] || [ -d "$work/known-lmdb" ] || [ -d "$work/unreproduced" ] || [ -d "$work/slow" ] || rm -rf "$work"
exit 0
