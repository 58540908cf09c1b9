#!/bin/bash
# Links kernel_bench against a CMake build's library (CMake does not build bench/cpu_quant).
# Usage, from the repository root: bash bench/cpu_quant/build.sh BUILD_DIR OUT_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?build dir}" && pwd)
out=$(mkdir -p "${2:?out dir}" && cd "$2" && pwd)
blas_inc=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' | head -1)")
extra=()
[ -f "$build/libstarattn_cuda.a" ] && extra=("$build/libstarattn_cuda.a" -L"${CUDA_HOME:-/usr/local/cuda}/lib64" -lcublas -lcublasLt -lcudart -lnccl)
g++ -std=c++20 -O3 -fopenmp -Wall -Wextra -Werror -I"$root/include" -I"$root/src" -I"$blas_inc" \
  "$root/bench/cpu_quant/kernel_bench.cpp" -o "$out/kernel_bench" -Wl,--as-needed \
  "$build/libstarattn_lib.a" "${extra[@]}" -lopenblas -lpcre2-8 $(mpicxx --showme:link) -fopenmp -lpthread
echo "built $out/kernel_bench"
