#!/bin/bash
# The accuracy study of Star Attention's open questions, run through `starattn eval` (resumable:
# run it again and it continues where it stopped). Results go to OUT/<part>/results.jsonl, one
# line per sample, in eval's own format; bench/study/plot.py draws the figures from them.
#
#   bash bench/study/run.sh [PART...]        parts: sources blocks anchors babilong (default all)
#
# Environment: BIN (build/starattn), MODEL (the default model), DEVICE (cuda), OUT
# (eval_results/study), LENGTHS ("4096 8192"), SAMPLES (50), MPI (a launcher prefix, e.g.
# "mpirun -np 2", for star and ring over several ranks; empty: one rank), EVAL_FLAGS (more eval
# flags for every run, e.g. "--haystack kjv.txt --wordlist words" where Debian's bible-kjv and
# wamerican are not installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-build/starattn}
model=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
device=${DEVICE:-cuda}
out=${OUT:-eval_results/study}
lengths=${LENGTHS:-4096 8192}
samples=${SAMPLES:-50}
mpi=${MPI:-}
extra=(${EVAL_FLAGS:-})
parts=${*:-sources blocks anchors babilong}
needles=niah_single_1,niah_single_2,niah_multivalue,niah_multiquery
babilong=qa1,qa2,qa3

eval_run() {  # eval_run PART TASKS LENGTH [eval flags...]
  local part=$1 tasks=$2 length=$3
  shift 3
  $mpi "$bin" eval -m "$model" --device "$device" --tasks "$tasks" -l "$length" \
    --samples "$samples" -o "$out/$part" --resume --progress off "${extra[@]}" "$@"
}

for L in $lengths; do
  for part in $parts; do
    case $part in
      sources)  # the paper's Table 3: what the anchor holds, B = L/4, A = B
        for src in first previous random shuffled constant; do
          mode=shared
          [[ $src == previous ]] && mode=recompute
          eval_run sources "$needles,$babilong" "$L" --attn star -b L/4 -a B \
            --anchor-source "$src" --anchor-mode "$mode" --anchor-seed 1
        done ;;
      blocks)  # accuracy against block size, A = B (and dense, the exact reference)
        eval_run blocks "$needles" "$L" --attn dense
        for b in L/16 L/8 L/4 L/2; do eval_run blocks "$needles" "$L" --attn star -b "$b" -a B; done ;;
      anchors)  # accuracy against A/B at B = L/4
        for a in 0 B/16 B/8 B/4 B/2 B; do eval_run anchors "$needles" "$L" --attn star -b L/4 -a "$a"; done ;;
      babilong)  # qa1-qa3 for the exact baselines, star, and star without the anchor
        eval_run babilong "$babilong" "$L" --attn dense
        eval_run babilong "$babilong" "$L" --attn ring
        eval_run babilong "$babilong" "$L" --attn star -b L/4 -a B
        eval_run babilong "$babilong" "$L" --attn star -b L/4 -a 0 ;;
      *) echo "unknown part $part (sources blocks anchors babilong)" >&2; exit 2 ;;
    esac
  done
done
echo "results in $out/*/results.jsonl; figures: python3 bench/study/plot.py $out docs/study"
