#!/bin/bash
# The GPU check of issue 4, in two halves:
#
#   scripts/gpu-check.sh build [DIR]   here (nvcc 13, no GPU needed): builds the GPU test binary,
#                                      starattn, the multi-rank engine test, the model benchmark
#                                      and, when its source is there, the attention benchmark into
#                                      DIR (default build-gpu, git-ignored), stripped so the folder
#                                      travels (<= 64 MiB). bench/multi_gpu/scaling.sh uses it too.
#   scripts/gpu-check.sh run [DIR]     on the GPU machine, from the repository root, with DIR
#                                      carried along: GPU tests, benchmarks (ours and PyTorch/HF on
#                                      the same shapes in the same run), a short table last.
#   scripts/gpu-check.sh fp8 [DIR]     on the GPU machine, DIR carried along: the FP8 KV cache
#                                      alone (also the last part of `run`): its GPU tests, decode at
#                                      128K on the random Llama-3.1-8B shape with bf16 and fp8 KV,
#                                      the KV capacity of each, and a 1M-token star run (-b 32768)
#                                      with fp8 KV.
#
# Logs go to $OUT when set (the device tool brings them back), else to DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
dir=${2:-build-gpu}

if [[ $mode == build ]]; then
  set -e
  cmake -S . -B build-cuda-be -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-cuda-be -j"$(nproc)" --target starattn_cuda_tests starattn engine_mpi_test
  mkdir -p "$dir"
  cp build-cuda-be/starattn_cuda_tests build-cuda-be/starattn build-cuda-be/tests/engine_mpi_test \
    "$dir/"
  bash bench/model/build.sh build-cuda-be "$dir"
  if [[ -f bench/attention/attention_bench.cu ]]; then
    nvcc -std=c++20 -O3 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_80,code=sm_80 \
      --expt-relaxed-constexpr -Iinclude -Isrc bench/attention/attention_bench.cu \
      build-cuda-be/libstarattn_cuda.a -lcublas -o "$dir/attention_bench"
  fi
  strip "$dir"/starattn_cuda_tests "$dir"/starattn "$dir"/engine_mpi_test "$dir"/model_bench \
    "$dir"/attention_bench 2>/dev/null || true
  du -sh "$dir"
  exit 0
fi
[[ $mode == run || $mode == fp8 ]] || { echo "usage: $0 build|run|fp8 [DIR]" >&2; exit 2; }

log=${OUT:-$dir}
mkdir -p "$log"
export STARATTN_SOURCE_DIR=$PWD  # the tests' fixtures, wherever the tree was copied
summary=()
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,driver_version --format=csv,noheader

# One `bench --json` line's numbers: phase 1 (s), first token (s), decode (ms/token), KV.
bench_line() {
  python3 -c '
import json, sys
try:
    j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    print("no result (%s)" % e); sys.exit(0)
kv = j.get("kv", {})
print(json.dumps({k: j.get(k) for k in ("prefill", "decode")}), "kv:", json.dumps(kv))
' "$1"
}

fp8_checks() {
  echo "== fp8 KV: GPU tests"
  timeout 300 "$dir/starattn_cuda_tests" --gtest_brief=1 \
    --gtest_filter='CudaFp8*:CudaMemoryPlan*:*Fp8*' >"$log/fp8_tests.log" 2>&1
  local rc=$?
  grep -E "^\[  (FAILED|PASSED|SKIPPED) " "$log/fp8_tests.log" | sort | uniq -c | head -20
  grep -B2 -A8 "Failure" "$log/fp8_tests.log" | head -60
  summary+=("fp8 gpu tests: rc=$rc, $(grep -m1 -E '^\[  PASSED' "$log/fp8_tests.log")")
  echo "== fp8 KV: engine invariants on one GPU (bf16 and fp8 KV)"
  timeout 300 "$dir/engine_mpi_test" cuda >"$log/fp8_engine.log" 2>&1
  summary+=("engine invariants, 1 GPU: rc=$? $(grep -E 'passed, [0-9]+ failed' "$log/fp8_engine.log")")
  grep FAIL "$log/fp8_engine.log" | head -20
  local m=random:llama-3.1-8b
  for kv in bf16 fp8; do
    echo "== decode at 128K, dense, $kv KV"
    timeout 300 "$dir/starattn" bench --device cuda -m $m --attn dense --prefill 131072 \
      --decode 64 --kv-type $kv --json >"$log/fp8_decode128k_$kv.json" 2>"$log/fp8_decode128k_$kv.log"
    summary+=("decode 128K $kv: rc=$? $(bench_line "$log/fp8_decode128k_$kv.json")")
    tail -4 "$log/fp8_decode128k_$kv.log"
  done
  echo "== star, B = 32768, 1M tokens, fp8 KV"
  timeout 590 "$dir/starattn" bench --device cuda -m $m --attn star -b 32768 --prefill 1048576 \
    --decode 16 --kv-type fp8 --json >"$log/fp8_star1m.json" 2>"$log/fp8_star1m.log"
  summary+=("star 1M fp8: rc=$? $(bench_line "$log/fp8_star1m.json")")
  tail -6 "$log/fp8_star1m.log"
}

if [[ $mode == fp8 ]]; then
  fp8_checks
  echo
  echo "== summary"
  printf '%s\n' "${summary[@]}"
  exit 0
fi

echo "== GPU tests"
timeout 300 "$dir/starattn_cuda_tests" --gtest_brief=1 >"$log/tests.log" 2>&1
rc=$?
grep -E "^\[  (FAILED|PASSED|SKIPPED) " "$log/tests.log" | sort | uniq -c | head -40
grep -B2 -A8 "Failure" "$log/tests.log" | head -60
summary+=("gpu tests: rc=$rc, $(grep -m1 -E '^\[  PASSED' "$log/tests.log"), $(grep -c '^\[  FAILED  \] [A-Za-z]' "$log/tests.log") failed")

gpus=$(nvidia-smi -L | wc -l)
if ((gpus >= 2)); then
  echo "== engine invariants on $gpus GPUs, one rank each, tensors over NCCL"
  bash bench/multi_gpu/scaling.sh check "$dir" >"$log/engine_mpi.log" 2>&1
  result=$(grep -E "passed, [0-9]+ failed" "$log/engine_mpi.log" | tail -1)
  echo "${result:-no result: see $log/engine_mpi.log}"
  summary+=("engine invariants on $gpus GPUs: ${result:-failed to run}")
fi

if [[ -x $dir/attention_bench ]]; then
  echo "== attention benchmark (ours, then PyTorch SDPA)"
  timeout 120 "$dir/attention_bench" "$log/attention.txt" >"$log/attention_bench.log" 2>&1
  summary+=("attention bench: rc=$?")
  PYTHONUNBUFFERED=1 timeout 150 python3 bench/attention/sdpa_baseline.py "$log/attention.txt" \
    >"$log/sdpa.log" 2>&1
  tail -8 "$log/sdpa.log"
fi

echo "== model benchmark: random Llama-3.1-8B shape, 32K (ours, then HF transformers + SDPA)"
timeout 240 "$dir/model_bench" --tokens 32768 --steps 32 --out "$log/model.txt" 2>&1 |
  tee "$log/model_bench.log" | tail -40
summary+=("model bench: rc=${PIPESTATUS[0]}")
PYTHONUNBUFFERED=1 timeout 300 python3 bench/model/hf_baseline.py "$log/model.txt" \
  --tokens 32768 --steps 32 >"$log/hf.log" 2>&1
summary+=("hf baseline: rc=$?")

fp8_checks

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
[[ -f $log/sdpa.log ]] && grep -A12 "^roofline" "$log/sdpa.log"
tail -14 "$log/hf.log"
