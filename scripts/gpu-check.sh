#!/bin/bash
# The GPU check, in two halves:
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
#                                      the KV capacity of each, star phase 1 at 128K (-b 32768) with
#                                      each, and a 1M-token star run with fp8 KV (about 5 minutes).
#
# SECTIONS (default "tests attention model serve batch quant fp8") picks what `run` does:
#   tests      the GPU test binary
#   attention  the attention kernels' benchmark against PyTorch SDPA
#   model      the model benchmark at 32K against HF transformers
#   serve      a 128K-token context encoded once, then the time to first token of 64-token
#              questions on it: the engine alone (bench --sequences 1) and through the HTTP
#              server with the openai client (bench/serve/serve_bench.py; its wheels in .whl/)
#   batch      S = 1, 8, 32, 64 questions over one 128K context decoded together (bench
#              --sequences), beside HF transformers' batched decode (bench/batch/hf_batched.py)
#   quant      the model benchmark with its matrices in Q4_K and Q8_0 blocks
#   fp8        what `gpu-check.sh fp8` runs (above)
#   long       (not in the default list) what one GPU holds: `generate` with fp8 KV and star
#              (-b 32768) over a document of about 1.05M tokens (the first 2,560,000 characters of
#              HAYSTACK, a KJV text, through the small test tokenizer), then dense beside star at
#              512K tokens with bf16 and fp8 KV; LONG_RUNS (default
#              "star:bf16 star:fp8 dense:bf16 dense:fp8") picks the 512K runs, each up to 10 minutes
#   accuracy   (not in the default list) the default model's eval with bf16 and fp8 KV through
#              tools/eval_fp8_matrix.sh; needs models/SmolLM2-135M-Instruct.Q4_1.gguf, and
#              HAYSTACK / WORDLIST files where the machine has no bible-kjv / wamerican;
#              EVAL_SAMPLES (default 50); CONFIGS as tools/eval_fp8_matrix.sh takes it (the
#              int8-grid rows of docs/ACCURACY.md: dense:bf16:int8, star:bf16:int8:32, ...)
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
  # The shared libraries a machine without cpp-httplib lacks; the binaries look in $dir/lib.
  mkdir -p "$dir/lib"
  cp -L build-cuda-be/lib/* "$dir/lib/"
  bash bench/model/build.sh build-cuda-be "$dir"
  if [[ -f bench/attention/attention_bench.cu ]]; then
    nvcc -std=c++20 -O3 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_80,code=sm_80 \
      --expt-relaxed-constexpr -Iinclude -Isrc bench/attention/attention_bench.cu \
      build-cuda-be/libstarattn_cuda.a build-cuda-be/libstarattn_lib.a -lcublas -lgomp -o "$dir/attention_bench"
  fi
  strip "$dir"/starattn_cuda_tests "$dir"/starattn "$dir"/engine_mpi_test "$dir"/model_bench \
    "$dir"/attention_bench 2>/dev/null || true
  du -sh "$dir"
  exit 0
fi
[[ $mode == run || $mode == fp8 ]] || { echo "usage: $0 build|run|fp8 [DIR]" >&2; exit 2; }

log=${OUT:-$dir}
mkdir -p "$log"
sections=" ${SECTIONS:-tests attention model serve batch quant fp8} "
want() { [[ $sections == *" $1 "* ]]; }
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
  for kv in bf16 fp8; do
    echo "== star phase 1 at 128K, B = 32768, $kv KV"
    timeout 300 "$dir/starattn" bench --device cuda -m $m --attn star -b 32768 --prefill 131072 \
      --decode 16 --kv-type $kv --json >"$log/fp8_star128k_$kv.json" 2>"$log/fp8_star128k_$kv.log"
    summary+=("star 128K $kv: rc=$? $(bench_line "$log/fp8_star128k_$kv.json")")
  done
  echo "== star, B = 32768, 1M tokens, fp8 KV (one run: phase 1 alone takes about 3 minutes)"
  timeout 590 "$dir/starattn" bench --device cuda -m $m --attn star -b 32768 --prefill 1048576 \
    --decode 16 --kv-type fp8 --repeats 1 --json >"$log/fp8_star1m.json" 2>"$log/fp8_star1m.log"
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

if want tests; then
  echo "== GPU tests"
  timeout 300 "$dir/starattn_cuda_tests" --gtest_brief=1 >"$log/tests.log" 2>&1
  rc=$?
  grep -E "^\[  (FAILED|PASSED|SKIPPED) " "$log/tests.log" | sort | uniq -c | head -40
  grep -B2 -A8 "Failure" "$log/tests.log" | head -60
  summary+=("gpu tests: rc=$rc, $(grep -m1 -E '^\[  PASSED' "$log/tests.log"), $(grep -c '^\[  FAILED  \] [A-Za-z]' "$log/tests.log") failed")
fi

gpus=$(nvidia-smi -L | wc -l)
if ((gpus >= 2)); then
  echo "== engine invariants on $gpus GPUs, one rank each, tensors over NCCL"
  bash bench/multi_gpu/scaling.sh check "$dir" >"$log/engine_mpi.log" 2>&1
  result=$(grep -E "passed, [0-9]+ failed" "$log/engine_mpi.log" | tail -1)
  echo "${result:-no result: see $log/engine_mpi.log}"
  summary+=("engine invariants on $gpus GPUs: ${result:-failed to run}")
fi

if want attention && [[ -x $dir/attention_bench ]]; then
  echo "== attention benchmark (ours, then PyTorch SDPA)"
  timeout 120 "$dir/attention_bench" "$log/attention.txt" >"$log/attention_bench.log" 2>&1
  summary+=("attention bench: rc=$?")
  PYTHONUNBUFFERED=1 timeout 150 python3 bench/attention/sdpa_baseline.py "$log/attention.txt" \
    >"$log/sdpa.log" 2>&1
  tail -8 "$log/sdpa.log"
fi

if want model; then
  echo "== model benchmark: random Llama-3.1-8B shape, 32K (ours, then HF transformers + SDPA)"
  timeout 240 "$dir/model_bench" --tokens 32768 --steps 32 --out "$log/model.txt" 2>&1 |
    tee "$log/model_bench.log" | tail -40
  summary+=("model bench: rc=${PIPESTATUS[0]}")
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/model/hf_baseline.py "$log/model.txt" \
    --tokens 32768 --steps 32 >"$log/hf.log" 2>&1
  summary+=("hf baseline: rc=$?")
fi

random8b=(-m random:llama-3.1-8b --device cuda)
if want serve; then
  echo "== serve: a 128K-token context encoded once, then 64-token questions on it"
  # 131072 context tokens + a 64-token question.
  timeout 300 "$dir/starattn" bench "${random8b[@]}" --prefill 131136 --query 64 --decode 8 \
    --repeats 1 --sequences 1 2>&1 | tee "$log/serve_engine.log" | tail -6
  if [[ -d .whl ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
  fi
  PYTHONUNBUFFERED=1 timeout 400 python3 bench/serve/serve_bench.py --bin "$dir/starattn" \
    --tokenizer tests/fixtures/tokenizer/llama3_tokenizer.json --context-tokens 131072 \
    --question-tokens 64 2>&1 | tee "$log/serve_http.log" | tail -4
  summary+=("serve: $(grep -m1 'time to first token' "$log/serve_http.log")")
fi
if want batch; then
  echo "== batch: S questions over one 128K context, decoded together (ours, then HF)"
  timeout 400 "$dir/starattn" bench "${random8b[@]}" --prefill 131136 --query 64 --decode 16 \
    --repeats 1 --sequences 1,8,32,64 2>&1 | tee "$log/batch.log" | tail -8
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/batch/hf_batched.py --tokens 131072 \
    --sequences 1,8,32,64 2>&1 | tee "$log/hf_batched.log" | tail -6
  summary+=("batch: see $log/batch.log")
fi

if want quant; then
echo "== model benchmark with the matrices in GGUF blocks (decode and prefill against bf16 above)"
# The bf16 baseline comes from the model section, or here when that section is not run.
quant_types="q4_k q8_0"
want model || quant_types="bf16 $quant_types"
for wt in $quant_types; do
  timeout 240 "$dir/model_bench" --tokens 32768 --steps 32 --weights "$wt" --out "$log/model_$wt.txt" \
    2>&1 | tee "$log/model_bench_$wt.log" | grep -E "^backend:|^prefill dense|^decode 1 token"
  summary+=("model bench $wt: rc=${PIPESTATUS[0]}")
done
fi

if want fp8; then
  fp8_checks
fi

if want long; then
  m=random:llama-3.1-8b
  echo "== generate, star B = 32768, fp8 KV, a document of about 1.05M tokens"
  doc=$log/long_doc.txt
  if [[ -n ${HAYSTACK:-} && -f $HAYSTACK ]]; then
    { [[ $HAYSTACK == *.gz ]] && zcat "$HAYSTACK" || cat "$HAYSTACK"; } | head -c 2560000 >"$doc"
    timeout 590 "$dir/starattn" generate --device cuda -m $m \
      --tokenizer tests/fixtures/tokenizer/llama3_tokenizer.json --context-file "$doc" \
      --query "Who is named first?" -n 16 --attn star -b 32768 --kv-type fp8 --progress on \
      --json >"$log/long_generate_fp8.json" 2>"$log/long_generate_fp8.log"
    summary+=("generate 1M star fp8: rc=$? $(python3 -c '
import json, sys
try:
    j = json.loads(open(sys.argv[1]).read())
except Exception as e:
    print("no result (%s)" % e); sys.exit(0)
print(json.dumps({k: j.get(k) for k in ("context_tokens", "phase1_s", "query_s", "decode_ms_per_token",
      "generated_tokens", "kv_type", "kv_bytes_per_token", "max_context_tokens")}))' "$log/long_generate_fp8.json")")
    tail -3 "$log/long_generate_fp8.log"
    rm -f "$doc"
  else
    summary+=("generate 1M star fp8: skipped (HAYSTACK is not a file)")
  fi
  for r in ${LONG_RUNS-star:bf16 star:fp8 dense:bf16 dense:fp8}; do
    attn=${r%%:*} kv=${r#*:}
    echo "== $attn at 512K, $kv KV"
    timeout 590 "$dir/starattn" bench --device cuda -m $m --attn "$attn" -b 32768 --prefill 524288 \
      --decode 16 --kv-type "$kv" --repeats 1 --json >"$log/long_${attn}512k_$kv.json" \
      2>"$log/long_${attn}512k_$kv.log"
    summary+=("$attn 512K $kv: rc=$? $(bench_line "$log/long_${attn}512k_$kv.json")")
  done
fi

if want accuracy; then
  echo "== accuracy with fp8 KV: dense and star, bf16 and fp8, 2K/4K/8K, 50 samples per task"
  if [[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]]; then
    STARATTN=$dir/starattn timeout 1200 tools/eval_fp8_matrix.sh "$log/eval_fp8" 2048,4096,8192 \
      "${EVAL_SAMPLES:-50}" niah_single_2,niah_single_3,niah_multivalue,niah_multiquery \
      --max-new 48 ${HAYSTACK:+--haystack "$HAYSTACK"} ${WORDLIST:+--wordlist "$WORDLIST"} \
      2>&1 | tee "$log/eval_fp8.log" | tail -30
    summary+=("accuracy fp8: rc=${PIPESTATUS[0]}, tables in $log/eval_fp8.log")
  else
    summary+=("accuracy fp8: skipped (no models/SmolLM2-135M-Instruct.Q4_1.gguf)")
  fi
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
[[ -f $log/sdpa.log ]] && grep -A12 "^roofline" "$log/sdpa.log"
[[ -f $log/hf.log ]] && tail -14 "$log/hf.log"
