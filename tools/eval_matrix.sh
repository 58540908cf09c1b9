#!/usr/bin/env bash
# Runs the accuracy matrix of docs/ACCURACY.md into one folder, one configuration after another
# (never two eval processes at once): dense, Star Attention with B = L/4 and A = B, A = 0 (the
# paper's no-anchor ablation) and A = B/4, then ring under mpirun. --resume makes it restartable:
# run it again after an interruption and it continues where it stopped. Prints the tables at the
# end (also in OUT/summary.md).
#
# Usage: tools/eval_matrix.sh OUT LENGTHS SAMPLES TASKS [more `starattn eval` flags]
#   e.g. tools/eval_matrix.sh eval_results 2048 6 niah_single_2,niah_multiquery --max-new 48
# Environment: STARATTN (binary, default build/starattn), RING_SAMPLES (default SAMPLES; ring is
# exact, so a few samples show it matches dense), RING_RANKS (default 2), OMP_NUM_THREADS
# (default 2 for the one-rank runs, 1 per rank for ring).
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,14p "$0"; exit 2; }
out=$1 lengths=$2 samples=$3 tasks=$4
shift 4
bin=${STARATTN:-build/starattn}
threads=${OMP_NUM_THREADS:-2}
# Spinning OpenMP threads lose badly when other processes share the cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
common=(--tasks "$tasks" --length "$lengths" --out "$out" --resume "$@")

run() { echo "== $*" >&2; OMP_NUM_THREADS=$threads "$bin" eval --samples "$samples" "${common[@]}" "$@" >/dev/null; }
run --attn dense
run --attn star -b L/4 -a B
run --attn star -b L/4 -a 0
run --attn star -b L/4 -a B/4
echo "== ring on ${RING_RANKS:-2} ranks" >&2
mpirun --allow-run-as-root --oversubscribe -np "${RING_RANKS:-2}" -x OMP_NUM_THREADS=1 \
  -x OMP_WAIT_POLICY "$bin" eval --attn ring --samples "${RING_SAMPLES:-$samples}" \
  "${common[@]}" >/dev/null
"$bin" eval --report --out "$out"
