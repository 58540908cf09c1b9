#!/usr/bin/env bash
# Phase-1 time and phase-2 ms/token on the CPU for dense, ring and Star Attention (B = N/4, A = B,
# each anchor mode), at N = 8000 context tokens of the default model, with 2 ranks of 1 thread
# (dense: 1 rank of 2 threads, so every run uses both cores). Prints one table.
# Usage: bench/cpu_star.sh [BUILD_DIR] [N]
set -euo pipefail
bin=${1:-build}/starattn
n=${2:-8000}
b=$((n / 4))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1)
run() {  # label, launcher..., -- bench args
  local label=$1; shift
  local out
  out=$("$@" --prefill "$n" --decode 16 --repeats 1 --json 2>/dev/null | grep '^{')
  python3 - "$label" "$out" <<'PY'
import json, sys
label, j = sys.argv[1], json.loads(sys.argv[2])
p = j["prefill"][0]
print(f"{label:<28} {p['seconds']:9.2f} {p['tok_s']:9.1f} {j['decode']['ms_per_token']:10.1f}")
PY
}
echo "N=$n tokens, B=$b, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-28s %9s %9s %10s\n" "config" "phase1 s" "tok/s" "ms/token"
run "dense (1 rank x 2 thr)" env OMP_NUM_THREADS=2 "$bin" bench --attn dense
run "ring (2 ranks)" "${mpi[@]}" "$bin" bench --attn ring
for mode in recompute shared broadcast; do
  run "star B=N/4 A=B $mode" "${mpi[@]}" "$bin" bench --attn star -b "$b" --anchor-mode "$mode"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
