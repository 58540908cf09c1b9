#!/bin/bash
# Hand build (no CMake, so half-written files elsewhere in the tree cannot break it) of the CUDA
# attention kernels, their gtest binary and the benchmark, into a git-ignored folder.
# Usage, from the repository root: bash bench/attention/build.sh [build-cuda-att]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-build-cuda-att}" && cd "${1:-build-cuda-att}" && pwd)
cd "$out"
NV=(nvcc -std=c++20 -O3 -gencode arch=compute_90a,code=sm_90a --expt-relaxed-constexpr
    -Xcompiler=-Wall,-Wextra -Werror=all-warnings -I"$root/include" -I"$root/src"
    -I"$root/tests" -DSTARATTN_SOURCE_DIR="\"$root\"")
pids=()
kernels=(attention attention_prefill attention_prefill_sm90 attention_decode attention_merge
         attention_shared attention_items)
for f in "${kernels[@]}"; do
  "${NV[@]}" -c "$root/src/backend/cuda/$f.cu" -o $f.o & pids+=($!)
done
# The CPU reference the tests compare against, and the CUDA error reporting they use.
for f in backend/cpu/attention_cpu attention/merge backend/cpu/threads; do
  g++ -std=c++20 -O3 -fopenmp -I"$root/include" -I"$root/src" \
    -I/usr/include/x86_64-linux-gnu/openblas-pthread -c "$root/src/$f.cpp" -o "$(basename $f).o" &
  pids+=($!)
done
"${NV[@]}" -c "$root/src/backend/cuda/cuda_check.cpp" -o cuda_check.o & pids+=($!)
# The tests in C++17, as CMake builds CUDA sources: cuda_test_util.h's bf16 copies warn under
# nvcc's C++20.
for t in attention_test attention_batch_test; do
  "${NV[@]/#-std=c++20/-std=c++17}" -c "$root/tests/cuda/$t.cu" -o $t.o & pids+=($!)
done
"${NV[@]}" -c "$root/bench/attention/attention_bench.cu" -o attention_bench.o & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
objs=("${kernels[@]/%/.o}" cuda_check.o)
nvcc -o attention_test attention_test.o attention_batch_test.o "${objs[@]}" attention_cpu.o merge.o \
  threads.o -lgtest_main -lgtest -lopenblas -lcublas -Xcompiler -fopenmp
nvcc -o attention_bench attention_bench.o "${objs[@]}" -lcublas
echo "built $out/attention_test $out/attention_bench"
