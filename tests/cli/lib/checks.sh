# checks.sh — the checks the log's CLI scenarios share (sourced, not run; ctest runs only
# tests/cli/*.sh). Needs $T, the scenario's scratch directory.

fail() { echo "FAIL: $*" >&2; exit 1; }

# status WANT COMMAND... : run, check the exit status, keep stdout in $OUT
status() {
  local want=$1 got=0
  shift
  OUT=$("$@" 2> "$T/stderr") || got=$?
  [ "$got" = "$want" ] || fail "$* exited $got, want $want (stdout: $OUT; stderr: $(cat "$T/stderr"))"
}

# jcheck JSON PYTHON-EXPRESSION : the expression (over o) holds for the JSON text
jcheck() {
  "$PY" -c 'import json,sys; o=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
    || fail "JSON $1 does not satisfy $2"
}

# the system's interpreter when there is one (stdlib only here): a version manager's shim
# can cost a second per start
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
