#!/bin/bash
# Links model_bench against the CMake build's libraries (CMake does not build bench/model).
# Usage, from the repository root: bash bench/model/build.sh BUILD_DIR OUT_DIR
#   BUILD_DIR: a CMake build with CUDA (holds libstarattn_lib.a and libstarattn_cuda.a)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?build dir}" && pwd)
out=$(mkdir -p "${2:?out dir}" && cd "$2" && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
blas_inc=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' | head -1)")
g++ -std=c++20 -O3 -fopenmp -Wall -Wextra -Werror -I"$root/include" -I"$root/src" -I"$cuda/include" \
  -I"$blas_inc" -c "$root/bench/model/model_bench.cpp" -o "$out/model_bench.o"
g++ -o "$out/model_bench" "$out/model_bench.o" -Wl,--as-needed "$build/libstarattn_lib.a" \
  "$build/libstarattn_cuda.a" "$build/libstarattn_lib.a" -L"$cuda/lib64" -lcublas -lcublasLt -lcudart -lnccl -lopenblas -lpcre2-8 \
  $(mpicxx --showme:link) -fopenmp -lpthread
rm -f "$out/model_bench.o"
echo "built $out/model_bench"
