#!/usr/bin/env bash
# usage: expect_fast_failure.sh MAX_SECONDS EXPECTED_TEXT EXPECTED_COUNT -- COMMAND...
# Passes when COMMAND exits non-zero within MAX_SECONDS and its output (stdout and stderr) holds
# EXPECTED_TEXT exactly EXPECTED_COUNT times (the fatal message is printed once, not per rank).
# A hang is killed at MAX_SECONDS + 5 so the test fails with a message instead of a ctest timeout.
# STARATTN_TIME_SCALE (an integer, default 1) multiplies MAX_SECONDS: the sanitized build
# (scripts/sanitize.sh) runs everything a few times slower.
set -u
max=$(($1 * ${STARATTN_TIME_SCALE:-1})) text=$2 count=$3
shift 4
start=$(date +%s%N)
out=$(timeout -k 2 $((max + 5)) "$@" 2>&1)
rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
printf '%s\n' "$out"
seen=$(printf '%s\n' "$out" | grep -cF -- "$text")
echo "expect_fast_failure: exit code $rc after ${elapsed_ms} ms; '$text' seen $seen times"
[ "$rc" -ne 0 ] || { echo "FAIL: the job exited 0"; exit 1; }
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || { echo "FAIL: the job hung and was killed"; exit 1; }
[ "$elapsed_ms" -le $((max * 1000)) ] || { echo "FAIL: slower than $max s"; exit 1; }
[ "$seen" -eq "$count" ] || { echo "FAIL: expected the text $count times"; exit 1; }
echo "PASS"
