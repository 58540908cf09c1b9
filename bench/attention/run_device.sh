#!/bin/bash
# The whole GPU check in one device call: tests, memcheck/racecheck on a subset, our benchmark,
# then PyTorch SDPA on the same shapes and the side-by-side table (printed last).
# Usage on the GPU machine, from the repository root, after bench/attention/build.sh here:
#   bash bench/attention/run_device.sh build-cuda-att
set -uo pipefail
cd "${1:-build-cuda-att}"
log=${OUT:-.}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader
timeout 240 ./attention_test --gtest_brief=1 2>&1 | tee "$log/test.log" | tail -4
echo "test failures: $(grep -c Failure "$log/test.log")"
filter='CudaAttention.MergeOfSplitKvEqualsWhole:CudaAttention.MergeMatchesCpuWithMaskedRows'
filter+=':SharedContextAttention.SmallShapes:AttentionMergeItems.SmallBatch'
for tool in memcheck racecheck; do
  timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 ./attention_test --gtest_brief=1 \
    --gtest_filter="$filter" > "$log/$tool.log" 2>&1
  echo "compute-sanitizer $tool: rc=$? $(grep -m1 'ERROR SUMMARY' "$log/$tool.log")"
done
timeout 90 ./attention_bench ours.txt 2>&1 | tee "$log/bench.log"
PYTHONUNBUFFERED=1 timeout 150 python3 ../bench/attention/sdpa_baseline.py ours.txt 2>&1 |
  tee "$log/sdpa.log" | tail -40
