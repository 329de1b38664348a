# lib.sh — shared by the reliability scripts (sourced, never run).
#
# Every script is called as `bash SCRIPT CLI_PATH SOURCE_DIR [options]`. It works in a fresh
# temporary directory (kept on failure when TL_REL_KEEP=1), finds the helper `tlrel` ($TLREL,
# or beside the CLI in its build tree) and exits 0 (passed), 1 (failed, the reason on stderr)
# or 77 (this machine cannot run the test; ctest reports it as skipped).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: bash $0 CLI_PATH SOURCE_DIR [options]" >&2; exit 2; }
CLI=$(realpath "$1")
SRC=$(realpath "$2")
shift 2
REL_ARGS=("$@")
if [ -z "${TLREL:-}" ]; then
  for cand in "$(dirname "$CLI")/tests/reliability/tlrel" "$(dirname "$CLI")/tlrel"; do
    if [ -x "$cand" ]; then TLREL=$cand; break; fi
  done
fi
[ -n "${TLREL:-}" ] && [ -x "$TLREL" ] || { echo "tlrel not found: build the target tlrel or set TLREL" >&2; exit 2; }

REL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlrel.XXXXXX")
REL_CLEANUP=()          # commands run at exit (unmounts, kills), last first
rel_cleanup() {
  local status=$?
  local i
  for ((i = ${#REL_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${REL_CLEANUP[$i]}" >/dev/null 2>&1 || true; done
  if [ $status -ne 0 ] && [ "${TL_REL_KEEP:-0}" = 1 ]; then
    echo "kept $REL_TMP for inspection" >&2
  else
    rm -rf "$REL_TMP"
  fi
  exit $status
}
trap rel_cleanup EXIT
trap 'exit 130' INT TERM

rel_say() { echo "[$(date +%H:%M:%S)] $*" >&2; }
rel_fail() { echo "FAIL: $*" >&2; exit 1; }
rel_skip() { echo "SKIP: $*" >&2; exit 77; }

# A random integer in [lo, hi] (bash's RANDOM, seeded by the script).
rel_rand() { echo $(( $1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1) )); }

# Sleep for a number of milliseconds.
rel_sleep_ms() { sleep "$(printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )))"; }

# Is CMD a command of this CLI? (`digest` and `replay` arrive with other issues.)
rel_have() { "$CLI" "$1" --help >/dev/null 2>&1; }

# verify DIR must pass; prints the number of events verified.
rel_verify() {
  local out
  if ! out=$("$CLI" -d "$1" --json verify 2>&1); then
    rel_fail "verify $1: $out"
  fi
  case "$out" in *'"ok":true'*) ;; *) rel_fail "verify $1 answered: $out" ;; esac
  echo "$out" | sed -n 's/.*"events":\([0-9]*\).*/\1/p'
}

# The projection digest of DIR compared with the digest of a fresh replay of the same log.
# Prints "equal", "unavailable" (the CLI has no digest/replay yet) or fails.
rel_digest_check() {
  local dir=$1 into
  rel_have digest && rel_have replay || rel_fail "the CLI has no digest or replay command"
  into=$(mktemp -d "$REL_TMP/replay.XXXXXX")
  rmdir "$into"
  local live replayed out
  live=$("$CLI" -d "$dir" digest 2>&1) || rel_fail "digest $dir: $live"
  live=$(echo "$live" | grep -oE '[0-9a-f]{64}' | head -1)
  out=$("$CLI" -d "$dir" replay --into "$into" 2>&1) || rel_fail "replay --into $into: $out"
  replayed=$("$CLI" -d "$into" digest 2>/dev/null | grep -oE '[0-9a-f]{64}' | head -1 || true)
  [ -n "$replayed" ] || replayed=$(echo "$out" | grep -oE '[0-9a-f]{64}' | head -1)
  [ -n "$live" ] && [ -n "$replayed" ] || rel_fail "no digest found (live '$live', replay output: $out)"
  [ "$live" = "$replayed" ] || rel_fail "projection digest $live differs from the replay's $replayed ($dir)"
  rm -rf "$into"
  echo "equal"
}
