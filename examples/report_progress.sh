#!/bin/sh
# report_progress.sh: a command for `taskmill work` that reports progress.
#
# It reads its parameters from the environment (TASKMILL_PARAM_STEPS, the
# task's "steps" param; the whole params object is on standard input and in
# TASKMILL_PARAMS), prints one protocol line per step (see docs/cli.md),
# and a result at the end. Lines that are not protocol lines, like the
# "working on" one below, become the task's log tail.
#
#   taskmill work --queue demo -- examples/report_progress.sh
#   taskmill submit demo --queue demo --param steps:=5 --wait
#
# Exit 0 completes the task; exit 3 fails it for good (bad params); any
# other non-zero exit fails it for a retry.
set -eu

steps=${TASKMILL_PARAM_STEPS:-10}
case $steps in
  '' | *[!0-9]*) echo "message ERROR 'steps' must be a whole number"; exit 3 ;;
esac

trap 'echo "message WARN stopped by SIGTERM"; exit 143' TERM

echo "message INFO starting $steps steps for task $TASKMILL_TASK_ID"
i=0
while [ "$i" -lt "$steps" ]; do
  i=$((i + 1))
  echo "working on part $i"
  sleep "${TASKMILL_PARAM_DELAY:-0.5}"
  echo "item part-$i 100% done"
  echo "items $i/$steps step $i of $steps"
done
echo "attribute host $(hostname)"
echo "result {\"steps\": $steps}"
