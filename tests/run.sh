#!/usr/bin/env bash
# Runs every test binary under BUILD/tests and prints the suite's total as
# its last line: `N passed, N failed`. Exits non-zero on any failure.
set -u
# Usage: tests/run.sh [BUILD_DIR] [FILTER]  (FILTER: a substring of test binary paths)
build=${1:-build/asan}
filter=${2:-}
export TASKMILL_BIN="$PWD/$build/taskmill"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
passed=0
failed=0
for t in $(find "$build/tests" -type f -perm -u+x | sort); do
  name=${t#"$build/tests/"}
  case "$name" in *"$filter"*) ;; *) continue ;; esac
  echo "== $name"
  out=$("$t" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -v '^RESULT '
  line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $name: crashed or printed no result (exit $rc)"
    failed=$((failed + 1))
    continue
  fi
  p=$(echo "$line" | sed 's/.*passed=\([0-9]*\).*/\1/')
  f=$(echo "$line" | sed 's/.*failed=\([0-9]*\).*/\1/')
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exit $rc after all tests passed (sanitizer or leak report?)"
    failed=$((failed + 1))
  fi
done
# The compatibility views, driven by their original clients (node's test runner).
compat=$(ls tests/compat/*.test.mjs 2>/dev/null || true)
if [ -n "$compat" ] && { [ -z "$filter" ] || [[ compat == *"$filter"* ]] || [[ $compat == *"$filter"* ]]; }; then
  echo "== compat (node --test)"
  out=$(cd tests/compat && node --test --test-reporter=tap $(for f in $compat; do basename "$f"; done) 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E '^(not )?ok |^# (pass|fail)|^ +(not ok|ok) ' | grep -v '^ \{8,\}' || true
  p=$(printf '%s\n' "$out" | sed -n 's/^# pass \([0-9]*\)$/\1/p' | tail -n 1)
  f=$(printf '%s\n' "$out" | sed -n 's/^# fail \([0-9]*\)$/\1/p' | tail -n 1)
  if [ -z "$p" ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAIL compat: node printed no summary (exit $rc)"
    failed=$((failed + 1))
  else
    passed=$((passed + p))
    failed=$((failed + ${f:-0}))
    [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && { echo "FAIL compat: exit $rc"; failed=$((failed + 1)); }
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
