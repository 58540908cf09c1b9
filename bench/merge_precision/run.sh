#!/bin/bash
# Builds and runs the merge-precision table of docs/ACCURACY.md ("Merge precision"). CMake does not
# build it: it needs only the merge itself (src/attention/merge.cpp) and a C++20 compiler.
# Usage, from anywhere: bash bench/merge_precision/run.sh [ROWS] > table.md
#   ROWS: query rows per cell (default 200); OUT_DIR: where the binary goes (default build/).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT_DIR:-$root/build}
mkdir -p "$out"
g++ -std=c++20 -O2 -fopenmp -Wall -Wextra -Werror -I"$root/include" -I"$root/src" \
  "$root/bench/merge_precision/merge_precision.cpp" "$root/src/attention/merge.cpp" \
  -o "$out/merge_precision"
"$out/merge_precision" "$@"
