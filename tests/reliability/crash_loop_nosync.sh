#!/usr/bin/env bash
# crash_loop_nosync.sh — crash_loop.sh with `apply --nosync` (bulk load mode): a killed
# process may not lose what the kernel already holds, and the log must verify after every kill.
#   bash crash_loop_nosync.sh CLI_PATH SOURCE_DIR
exec bash "$(dirname "$0")/crash_loop.sh" "$@" --nosync
