#!/usr/bin/env bash
# An independent reference model of the domain (tests/model/model_check.py, written from
# SPEC.md alone by a tester who did not read threadlog's sources) drives random command
# sequences through the CLI and compares every command's answer and every query, for every
# user, cursors followed to the end; then verify, replay --into, replay in place and
# replay --until-seq/--until-time against the model. Exit 1 prints a minimised reproduction.
# THREADLOG_MODEL_SEEDS / THREADLOG_MODEL_STEPS widen the run (defaults: 3 seeds x 150 steps);
# THREADLOG_MODEL_EVERY sets how many commands pass between comparisons of every query (50);
# THREADLOG_MODEL_LEAK_EVERY=K, under ASan, keeps LeakSanitizer's exit check on every K-th run.
set -euo pipefail
TL="$1"; SRC="$2"
exec python3 "$SRC/tests/model/model_check.py" "$TL" \
  --seeds "${THREADLOG_MODEL_SEEDS:-3}" --steps "${THREADLOG_MODEL_STEPS:-150}" \
  --every "${THREADLOG_MODEL_EVERY:-50}"
