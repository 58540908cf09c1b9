#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/) with clang into build-fuzz/ and runs each one for a
# fixed time, failing on any crash, sanitizer report (ASan, UBSan), leak, input slower than
# -timeout, or memory past -rss_limit_mb / a single allocation past -malloc_limit_mb.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]
#   SECONDS_PER_HARNESS  default 60 (what CI runs); give more by hand, e.g. 3600.
#   HARNESS              default all: gguf safetensors safetensors_index tokenizer_json tokenize
#                        eval_results chat_template openai_request
#   FUZZ_JOBS=N          harnesses run at once (default: the number of cores, at most 4).
#
# The corpus each harness grows is kept in build-fuzz/corpus/<harness>/, so a later run starts
# where this one ended; the committed seeds (tests/fuzz/seeds/, tools/make_fuzz_seeds.py) and
# the small fixtures are read as extra seed folders. A failing input is written to
# build-fuzz/artifacts/; replay it with build-fuzz/tests/fuzz/fuzz_<harness> <file>.
#
# Measured on a 2-core machine shared with other builds (load 10-14): the build from scratch took
# 193 s of CPU (19 min wall under that load; about 2 min on 2 free cores), the runs 4 rounds of
# 60 s with 2 jobs (257 s wall). End to end with an incremental build: 448 s. On CI's 2 free
# cores expect about 7 min.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
all=(gguf safetensors safetensors_index tokenizer_json tokenize eval_results chat_template
     openai_request)
if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi
cores=$(nproc)
jobs=${FUZZ_JOBS:-$((cores < 4 ? cores : 4))}

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found; scripts/setup.sh installs it (apt: clang libclang-rt-dev)" >&2
  exit 1
fi

t0=$(date +%s)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSTARATTN_FUZZ=ON -DSTARATTN_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" >/dev/null
cmake --build build-fuzz --target fuzz_all -j"$cores"
t1=$(date +%s)
echo "fuzz.sh: built the harnesses in $((t1 - t0)) s"

# Fixtures that are seeds as they are (or, for tokenizer_json, tokenizer.json NUL config).
fx=tests/fixtures
extra_seeds() {
  local name=$1 dir=build-fuzz/fixture-seeds/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  case "$name" in
    gguf) cp $fx/tokenizer/*.gguf "$dir"/ ;;
    safetensors) cp $fx/tiny/llama32_tied/model.safetensors "$dir"/ ;;
    safetensors_index) cp $fx/tiny/llama_gqa/model.safetensors.index.json "$dir"/ ;;
    tokenizer_json)
      for t in llama3 sp; do
        { cat $fx/tokenizer/${t}_tokenizer.json; printf '\0'; cat $fx/tokenizer/${t}_tokenizer_config.json; } \
          >"$dir/$t"
      done
      cp $fx/tokenizer/llama3_variant.json "$dir"/ ;;
    eval_results) cp $fx/eval/smollm2_1024_dense/results.jsonl "$dir"/ ;;
  esac
  echo "$dir"
}

run_one() {
  local name=$1
  local bin=build-fuzz/tests/fuzz/fuzz_$name corpus=build-fuzz/corpus/$name
  local dict=tests/fuzz/dicts/$name.dict
  [ "$name" = safetensors_index ] && dict=tests/fuzz/dicts/safetensors.dict
  mkdir -p "$corpus" build-fuzz/artifacts build-fuzz/logs
  local dirs=("$corpus")
  [ -d "tests/fuzz/seeds/$name" ] && dirs+=("tests/fuzz/seeds/$name")
  dirs+=("$(extra_seeds "$name")")
  # -timeout: seconds one input may take; -rss_limit_mb: the whole process; -malloc_limit_mb: one
  # allocation, so that a reader sizing a buffer from a lying count fails here even when the
  # machine has the memory. Inputs are at most a few hundred KB: nothing real needs 256 MB.
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
    -dict="$dict" -artifact_prefix="build-fuzz/artifacts/$name-" -print_final_stats=1 \
    "${dirs[@]}" >"build-fuzz/logs/$name.log" 2>&1
}

declare -A pid_of=()
failed=()
wait_one() {
  local done_pid rc=0
  wait -n -p done_pid || rc=$?
  for n in "${!pid_of[@]}"; do
    if [ "${pid_of[$n]}" = "$done_pid" ]; then
      unset "pid_of[$n]"
      local stats
      stats=$(grep -E "^stat::number_of_executed_units|^#[0-9]+ +DONE" "build-fuzz/logs/$n.log" |
              tail -1 || true)
      if [ $rc -eq 0 ]; then
        echo "fuzz.sh: $n: ok ($stats)"
      else
        echo "fuzz.sh: $n: FAILED (exit $rc); the end of build-fuzz/logs/$n.log:"
        tail -40 "build-fuzz/logs/$n.log"
        failed+=("$n")
      fi
    fi
  done
}

for name in "${harnesses[@]}"; do
  [ -x "build-fuzz/tests/fuzz/fuzz_$name" ] || { echo "fuzz.sh: no harness '$name'" >&2; exit 2; }
  while [ ${#pid_of[@]} -ge "$jobs" ]; do wait_one; done
  run_one "$name" &
  pid_of[$name]=$!
done
while [ ${#pid_of[@]} -gt 0 ]; do wait_one; done

echo "fuzz.sh: ran ${#harnesses[@]} harnesses for ${secs} s each, $jobs at a time, in $(($(date +%s) - t1)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs in build-fuzz/artifacts/)" >&2
  exit 1
fi
