#!/bin/bash
# Builds the CUDA attention tests against the CPU emulator (emu.h), in a git-ignored folder:
#   bash dev/cuda_emu/build.sh [build-emu]
#   build-emu/emu_tests --gtest_filter='SharedContextAttention.*:AttentionMergeItems.*'
#   EMU_CP_ASYNC=late build-emu/emu_tests ...      (cp.async lands at its wait, not at issue)
# Emulation runs about 1e4 times slower than an H200: long shapes (the ~70K-key cases) take
# minutes. TESTS names the test files (tests/cuda/*.cu) to build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$root/build-emu}" && cd "${1:-$root/build-emu}" && pwd)
tree=$out/tree
python3 "$here/prep.py" "$root" "$tree"
CXX=(g++ -std=c++20 -O2 -fopenmp -Wno-attributes -Wno-unknown-pragmas -I/usr/local/cuda/include
     -I"$tree/include" -I"$tree/src" -I"$tree/tests" -DSTARATTN_SOURCE_DIR="\"$root\""
     -I/usr/include/x86_64-linux-gnu/openblas-pthread)
EMU=(-include "$here/emu.h" -x c++)
kernels=(attention attention_decode attention_prefill attention_merge attention_shared
         attention_items)
tests=(${TESTS:-attention_test attention_batch_test})
pids=()
"${CXX[@]}" -I"$here" -c "$here/emu.cpp" -o "$out/emu.o" & pids+=($!)
for f in "${kernels[@]}"; do
  "${CXX[@]}" "${EMU[@]}" -c "$tree/src/backend/cuda/$f.cu" -o "$out/k_$f.o" & pids+=($!)
done
for f in backend/cuda/cuda_check backend/cuda/device_info attention/merge backend/cpu/attention_cpu backend/cpu/threads; do
  "${CXX[@]}" -c "$tree/src/$f.cpp" -o "$out/c_$(basename $f).o" & pids+=($!)
done
for t in "${tests[@]}"; do
  "${CXX[@]}" "${EMU[@]}" -c "$tree/tests/cuda/$t.cu" -o "$out/t_$t" & pids+=($!)
done
# The wgmma prefill is never chosen on the emulated sm_80; its entry point still has to link.
cat > "$out/no_wgmma.cpp" <<'EOF'
#include "backend/cuda/attention_common.cuh"
namespace starattn::cuda::attn {
void prefill_wgmma(const AttnParams&, cudaStream_t) { fail("emu: no wgmma"); }
}
EOF
"${CXX[@]}" "${EMU[@]}" -c "$out/no_wgmma.cpp" -o "$out/no_wgmma.o" & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
g++ -fopenmp -o "$out/emu_tests" "${tests[@]/#/$out/t_}" "$out"/k_*.o "$out"/c_*.o "$out/emu.o" \
  "$out/no_wgmma.o" -lgtest_main -lgtest -lopenblas -lpthread
echo "built $out/emu_tests"
