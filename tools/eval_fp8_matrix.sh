#!/usr/bin/env bash
# The FP8 KV accuracy table of docs/ACCURACY.md on one GPU: dense and Star Attention (B = L/4,
# A = B), each with bf16 and with fp8 KV. The default model leaves a GPU mostly idle, so the four
# configurations run as four eval processes at once, each into its own folder (results.jsonl is
# appended by one process only); then their results are joined into OUT and the tables printed
# (printed only; each part folder has its own summary.md). --resume makes it restartable.
#
# Usage: tools/eval_fp8_matrix.sh OUT LENGTHS SAMPLES TASKS [more `starattn eval` flags]
#   e.g. tools/eval_fp8_matrix.sh eval_fp8 2048,4096,8192 50 \
#          niah_single_2,niah_single_3,niah_multivalue,niah_multiquery --max-new 48 \
#          --haystack kjv.txt --wordlist words
# Environment: STARATTN (binary, default build/starattn), DEVICE (default cuda), THREADS (each
# process's OMP_NUM_THREADS, default 2), CONFIGS (default "dense:bf16 dense:fp8 star:bf16
# star:fp8"): the configurations, as ATTN:KV or ATTN:KV:GRID, where GRID (int8 or int8:G) runs
# that configuration under STARATTN_KV_EXPERIMENT=GRID (the int8-grid experiment of
# src/attention/kv_format.h) and names its column "... kv=GRID-grid".
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,16p "$0"; exit 2; }
out=$1 lengths=$2 samples=$3 tasks=$4
shift 4
bin=${STARATTN:-build/starattn}
common=(--device "${DEVICE:-cuda}" --tasks "$tasks" --length "$lengths" --samples "$samples"
        --resume --progress off "$@")
pids=()
for config in ${CONFIGS:-dense:bf16 dense:fp8 star:bf16 star:fp8}; do
  IFS=: read -r attn kv grid group <<<"$config"
  grid=${grid:+$grid${group:+:$group}}
  part=$out/part-$attn-$kv${grid:+-${grid/:/_}}
  mkdir -p "$part"
  flags=(--attn "$attn" --kv-type "$kv")
  [ "$attn" = star ] && flags+=(-b L/4 -a B)
  if [ -n "$grid" ]; then
    label=$([ "$attn" = star ] && echo "star B=L/4 A=B" || echo dense)
    flags+=(--label "$label kv=$grid-grid")
  fi
  echo "== $attn, $kv KV${grid:+, $grid grid} -> $part" >&2
  STARATTN_KV_EXPERIMENT=$grid OMP_NUM_THREADS=${THREADS:-2} \
    "$bin" eval "${flags[@]}" --out "$part" "${common[@]}" >"$part/log.txt" 2>&1 &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
cat "$out"/part-*/results.jsonl >"$out/results.jsonl"
"$bin" eval --report --out "$out"
exit $failed
