#!/usr/bin/env bash
# `make test`: every test, in two lanes at once.
#   lane 1: integration and e2e tests on the default local stack (one broker, security off);
#   lane 2: the `cluster` tests on the secure three-broker stack (other processes, other
#           ports), then the unit tests (no services).
# Most of a fault test's time is spent waiting on real services, so the two lanes overlap well
# on two cores (one after the other they took 37 minutes). Each lane prints its 20 slowest
# tests. Extra pytest arguments (make test PYTEST_ARGS=...) go to every pytest run; a run that
# they leave without tests (pytest exit 5) counts as passed.
set -u
python=${1:?usage: tests/lanes.sh PYTHON [pytest args...]}
shift
log=.test-lane2.log

ok() { [ "$1" -eq 0 ] || [ "$1" -eq 5 ]; }

(
  "$python" -m pytest -q --durations=20 -o cache_dir=.pytest_cache/lane2 \
    -m cluster tests/integration tests/e2e "$@"
  cluster=$?
  "$python" -m pytest -q --durations=20 -o cache_dir=.pytest_cache/lane2 tests/unit "$@"
  unit=$?
  ok $cluster && ok $unit
) >"$log" 2>&1 &
lane2=$!

"$python" -m pytest -q --durations=20 -m "not cluster" tests/integration tests/e2e "$@"
lane1=$?
wait $lane2
lane2=$?

echo "== lane 2: cluster tests (secure three-broker stack), then unit tests"
cat "$log"
echo "== lanes: default stack exit $lane1, cluster + unit exit $lane2"
ok $lane1 && [ $lane2 -eq 0 ]
