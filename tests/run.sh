#!/usr/bin/env bash
# Runs every test binary under BUILD/tests and the compatibility tests on
# SQLite, then the store and integration suites (tests/store, tests/integration)
# again on a throwaway PostgreSQL cluster (scripts/pg.sh), named `pg:NAME`.
# The dashboard's browser tests (tests/browser) run after the compatibility tests.
# Prints the suite's total as its last line: `N passed, N failed`. Exits
# non-zero on any failure.
#
# Usage: tests/run.sh [BUILD_DIR] [FILTER]
#   FILTER: a substring of a test's name (`integration/test_api`); one that
#           starts with `pg:` (`pg:`, `pg:store`) runs the PostgreSQL side only
# Environment:
#   TASKMILL_TEST_BACKENDS  sqlite | pg | both (default both)
#   TASKMILL_TEST_TIMEOUT   seconds one test binary may take (default 300;
#                           cli/test_work twice that)
#
# Every binary runs under `timeout`, which signals its whole process group,
# so a hung test takes its servers with it; the failure names the test that
# was running (`FAIL integration/test_api: timed out after 300 s in test
# 'x'`). The node suites name theirs the same way (tests/node_marks.mjs). PostgreSQL missing is a failure,
# not a skip: `scripts/deps.sh --test` installs it.
set -u
build=${1:-build/asan}
filter=${2:-}
backends=${TASKMILL_TEST_BACKENDS:-both}
# A filter that names the PostgreSQL runs (`make test TESTS=pg:`) asks for them.
case "$filter" in pg:*) backends=${TASKMILL_TEST_BACKENDS:-pg} ;; esac
limit=${TASKMILL_TEST_TIMEOUT:-300}
case "$backends" in sqlite | pg | both) ;; *)
  echo "run.sh: TASKMILL_TEST_BACKENDS must be sqlite, pg or both, not '$backends'" >&2
  exit 2
  ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
export TASKMILL_BIN="$PWD/$build/taskmill"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
unset TASKMILL_TEST_PG
passed=0
failed=0
skipped=0

# hung_case OUTPUT: where a binary the timeout ended was, from the harness's
# lines: `run  NAME` as each test starts, `ok   NAME` or `skip NAME: ...` as
# it ends (a `FAIL NAME` line comes at the first failure, not at the end).
hung_case() {
  local last rest
  if printf '%s\n' "$1" | grep -q '^RESULT '; then
    echo "after its last test, in its teardown"
    return
  fi
  last=$(printf '%s\n' "$1" | grep '^run  ' | tail -n 1)
  if [ -z "$last" ]; then
    echo "before its first test (starting its server?)"
    return
  fi
  rest=$(printf '%s\n' "$1" | L=$last awk 'seen { print } $0 == ENVIRON["L"] { seen = 1 }')
  if printf '%s\n' "$rest" | grep -q -e '^ok   ' -e '^skip '; then
    echo "after test '${last#run  }' ended"
  else
    echo "in test '${last#run  }'"
  fi
}

# run_bin NAME BINARY: runs one test binary and adds up its RESULT line.
run_bin() {
  local name=$1 t=$2 out rc line p f s start=$SECONDS limit=$limit
  # The worker's tests wait out real leases, graces and a server away for
  # 30 s (about 3.5 minutes in all under the sanitizers): twice the limit.
  case "$name" in cli/test_work) limit=$((limit * 2)) ;; esac
  echo "== $name"
  out=$(timeout -k 10 "$limit" "$t" </dev/null 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -v -e '^RESULT ' -e '^run  '
  # The slow ones, to see them coming near the limit.
  [ $((SECONDS - start)) -ge 30 ] && echo "    ($name took $((SECONDS - start)) s of its $limit s)"
  # 124: the TERM at the limit ended it; 137: the KILL 10 s later had to.
  if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ $((SECONDS - start)) -ge "$limit" ]; }; then
    # What finished before the limit still counts.
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
    echo "FAIL $name: timed out after $limit s $(hung_case "$out")"
    passed=$((passed + p))
    failed=$((failed + f + 1))
    return
  fi
  line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $name: crashed or printed no result (exit $rc)"
    failed=$((failed + 1))
    return
  fi
  p=$(echo "$line" | sed 's/.*passed=\([0-9]*\).*/\1/')
  f=$(echo "$line" | sed 's/.*failed=\([0-9]*\).*/\1/')
  s=$(echo "$line" | sed -n 's/.*skipped=\([0-9]*\).*/\1/p')
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + ${s:-0}))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exit $rc after all tests passed (sanitizer or leak report?)"
    failed=$((failed + 1))
  fi
}

# run_node NAME DIR: runs DIR/*.test.mjs with node's test runner (TAP) when the
# filter names NAME or one of the files, and adds up its pass and fail counts.
run_node() {
  local name=$1 dir=$2 files out rc p f
  files=$(ls "$dir"/*.test.mjs 2>/dev/null || true)
  [ -n "$files" ] || return 0
  if [ -n "$filter" ] && [[ $name != *"$filter"* ]] && [[ $files != *"$filter"* ]]; then return 0; fi
  echo "== $name (node --test)"
  out=$(cd "$dir" && timeout -k 10 "$limit" node --test \
    --test-reporter=tap --test-reporter-destination=stdout \
    --test-reporter="$root/tests/node_marks.mjs" --test-reporter-destination=stdout \
    $(for x in $files; do basename "$x"; done) </dev/null 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E '^(not )?ok |^# (pass|fail)|^ +(not ok|ok) ' | grep -v '^ \{8,\}' || true
  p=$(printf '%s\n' "$out" | sed -n 's/^# pass \([0-9]*\)$/\1/p' | tail -n 1)
  f=$(printf '%s\n' "$out" | sed -n 's/^# fail \([0-9]*\)$/\1/p' | tail -n 1)
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    printf '%s\n' "$out" | grep -v '^# \(run\|end\)  ' | tail -n 30
    # The tests node_marks.mjs saw start and never end.
    hung=$(printf '%s\n' "$out" | awk '
      /^# run  / { k = substr($0, 8); if (!(k in open)) order[n++] = k; open[k] = 1 }
      /^# end  / { delete open[substr($0, 8)] }
      END {
        for (i = 0; i < n; i++) {
          if (!(order[i] in open)) continue
          j = index(order[i], ": ")
          printf "%s%s '\''%s'\''", (s++ ? ", " : ""), substr(order[i], 1, j - 1), substr(order[i], j + 2)
        }
      }')
    echo "FAIL $name: timed out after $limit s ${hung:+in }${hung:-before any test started}"
    failed=$((failed + 1))
  elif [ -z "$p" ]; then
    printf '%s\n' "$out" | grep -v '^# \(run\|end\)  ' | tail -n 30
    echo "FAIL $name: node printed no summary (exit $rc)"
    failed=$((failed + 1))
  else
    [ "${f:-0}" -gt 0 ] && printf '%s\n' "$out" | grep -A 12 '^ *not ok ' | head -n 60
    passed=$((passed + p))
    failed=$((failed + ${f:-0}))
    [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && { echo "FAIL $name: exit $rc"; failed=$((failed + 1)); }
  fi
}

# ---- SQLite: every binary, then the compatibility views ----
if [ "$backends" != pg ]; then
  for t in $(find "$build/tests" -type f -perm -u+x | sort); do
    name=${t#"$build/tests/"}
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    run_bin "$name" "$t"
  done
  # The compatibility views, driven by their original clients, and the web
  # dashboard in Debian's headless chromium (playwright-core): node's test runner.
  run_node compat tests/compat
  run_node browser tests/browser
fi

# ---- PostgreSQL: the store and integration suites again, a fresh database per server ----
pg_names=()
if [ "$backends" != sqlite ]; then
  for t in $(find "$build/tests/store" "$build/tests/integration" -type f -perm -u+x 2>/dev/null | sort); do
    name=pg:${t#"$build/tests/"}
    case "$name" in *"$filter"*) pg_names+=("$t") ;; esac
  done
fi
if [ ${#pg_names[@]} -gt 0 ]; then
  if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    echo "== pg"
    echo "FAIL pg: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl;" \
      "scripts/deps.sh --test installs it); ${#pg_names[@]} test binaries did not run"
    failed=$((failed + 1))
  else
    pgdir=$(mktemp -d /tmp/taskmill-pg-XXXXXX)
    trap '"$root/scripts/pg.sh" stop "$pgdir" >/dev/null 2>&1' EXIT
    trap 'exit 130' INT TERM
    echo "== pg: a cluster in $pgdir"
    if pgurl=$(timeout -k 5 120 "$root/scripts/pg.sh" start "$pgdir"); then
      export TASKMILL_TEST_PG=$pgurl
      before=$failed
      for t in "${pg_names[@]}"; do
        run_bin "pg:${t#"$build/tests/"}" "$t"
      done
      unset TASKMILL_TEST_PG
      if [ "$failed" -ne "$before" ] && [ -s "$pgdir/server.log" ]; then
        echo "== pg: the end of the cluster's log ($pgdir/server.log)"
        tail -n 20 "$pgdir/server.log" | sed 's/^/    /'
      fi
    else
      echo "FAIL pg: the PostgreSQL cluster did not start (${#pg_names[@]} test binaries did not run)"
      failed=$((failed + 1))
    fi
  fi
fi

[ "$skipped" -gt 0 ] && echo "($skipped skipped: they do not apply to their backend)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
