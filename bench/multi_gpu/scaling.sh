#!/bin/bash
# Scaling measurements on one multi-GPU host (2 or 4 GPUs), from the
# repository root, with the build of `scripts/gpu-check.sh build` carried in DIR (default
# build-gpu). One rank per GPU, tensors over NCCL, the random Llama-3.1-8B-shaped model.
#
#   bench/multi_gpu/scaling.sh check   [DIR]  the engine's invariants on every GPU (engine_mpi_test)
#   bench/multi_gpu/scaling.sh small   [DIR]  32K and 128K: dense (1 GPU), ring, star; decode at 128K
#   bench/multi_gpu/scaling.sh large   [DIR]  512K: ring and star
#   bench/multi_gpu/scaling.sh huge    [DIR]  1M: star B=32K (every anchor mode), decode at 1M
#   bench/multi_gpu/scaling.sh ring1m  [DIR]  1M: the zigzag ring (about 4 minutes on 2 H200s)
#   bench/multi_gpu/scaling.sh generate [DIR] `starattn generate` over a 1M-token document
#   bench/multi_gpu/scaling.sh broadcast [DIR] the broadcast anchor again (128K beside the ring,
#                                             512K, 1M), after its first call was made anchor-long
#
# Each bench run appends one JSON line (bench --json plus a label) to $OUT/scaling.jsonl;
# bench/multi_gpu/report.py turns the lines into the tables and plot of docs/PERFORMANCE.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
what=${1:?usage: scaling.sh check|small|large|huge|ring1m|generate|broadcast [DIR]}
dir=${2:-build-gpu}
out=${OUT:-/tmp/scaling}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export STARATTN_SOURCE_DIR=$PWD
gpus=$(nvidia-smi -L | wc -l)
mpi=(mpirun -np "$gpus" --bind-to none -x NCCL_NVLS_ENABLE -x STARATTN_SOURCE_DIR)
model=random:llama-3.1-8b
query=64  # query tokens: a RULER-sized question, run as phase 2
quarter() { echo $((($1 - query + 3) / 4)); }  # B = N/4 for a prompt of $1 tokens

# label, ranks, then bench arguments; prints our table, appends the JSON line.
bench() {
  local label=$1 np=$2
  shift 2
  local runner=("${mpi[@]}")
  [[ $np == 1 ]] && runner=()
  echo "== $label ($np GPU): $*"
  local json
  json=$(timeout 590 "${runner[@]}" "$dir/starattn" bench -m "$model" --device cuda --query "$query" \
    --json "$@" 2>"$out/last.err")
  local rc=$?
  if [[ $rc != 0 || -z $json ]]; then
    echo "   failed (rc $rc):"; tail -5 "$out/last.err"; return 1
  fi
  echo "{\"label\": \"$label\", \"gpus\": $np, \"json\": $json}" >>"$out/scaling.jsonl"
  python3 - "$json" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
for p in j["prefill"]:
    print(f"   {p['tokens']:>8} tokens: phase 1 {p['phase1_seconds']:8.3f} s, "
          f"first token {p['seconds']:8.3f} s")
if "decode" in j:
    d = j["decode"]
    print(f"   decode at {d['context']}: {d['ms_per_token']:.2f} ms/token, "
          f"{d['comm_ms_per_token']:.3f} ms of it moving tensors")
print(f"   tensors: {j['tensor_comm']}")
PY
}

case $what in
check)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nvidia-smi topo -m | head -8
  ldd "$dir/starattn" | grep -E "nccl|cublas|mpi" | sed 's/^/   /'
  echo "== engine invariants on $gpus GPUs (one rank each, NCCL)"
  timeout 300 "${mpi[@]}" "$dir/engine_mpi_test" cuda
  echo "rc=$?"
  ;;
small)
  for n in 32768 131072; do
    bench "dense" 1 --attn dense --prefill $n --repeats 3 --decode 0
  done
  bench "ring" "$gpus" --attn ring --prefill 32768,131072 --repeats 3 --decode 32
  for n in 32768 131072; do
    for am in recompute shared broadcast; do
      bench "star B=N/4 $am" "$gpus" --attn star -b "$(quarter $n)" --anchor-mode $am \
        --prefill $n --repeats 3 --decode 0
    done
  done
  for am in recompute shared broadcast; do
    bench "star B=32K $am" "$gpus" --attn star -b 32768 --anchor-mode $am \
      --prefill 32768,131072 --repeats 3 --decode 32
  done
  ;;
large)
  bench "ring" "$gpus" --attn ring --prefill 524288 --repeats 1 --decode 0
  for am in recompute shared broadcast; do
    bench "star B=N/4 $am" "$gpus" --attn star -b "$(quarter 524288)" --anchor-mode $am \
      --prefill 524288 \
      --repeats 1 --decode 0
    bench "star B=32K $am" "$gpus" --attn star -b 32768 --anchor-mode $am --prefill 524288 \
      --repeats 1 --decode 0
  done
  ;;
huge)
  for am in shared broadcast recompute; do
    bench "star B=32K $am" "$gpus" --attn star -b 32768 --anchor-mode $am --prefill 1048576 \
      --repeats 1 --decode 32
  done
  ;;
ring1m)
  bench "ring" "$gpus" --attn ring --prefill 1048576 --repeats 1 --decode 32
  ;;
broadcast)
  bench "ring" "$gpus" --attn ring --prefill 131072 --repeats 3 --decode 0
  bench "star B=N/4 broadcast" "$gpus" --attn star -b "$(quarter 131072)" --anchor-mode broadcast \
    --prefill 131072 --repeats 3 --decode 0
  bench "star B=32K broadcast" "$gpus" --attn star -b 32768 --anchor-mode broadcast \
    --prefill 524288 --repeats 1 --decode 0
  bench "star B=32K broadcast" "$gpus" --attn star -b 32768 --anchor-mode broadcast \
    --prefill 1048576 --repeats 1 --decode 0
  ;;
generate)
  # A 1M-token document: the needle report, then filler sentences of dictionary words.
  python3 - examples/harbor_report.txt "$out/doc.txt" <<'PY'
import random, sys
random.seed(5)
base = open(sys.argv[1]).read()
vocab = ("the harbor ship rope lantern copper tide night keeper light wind sea stone road town "
         "market bell tower river bridge winter summer mill field bread salt iron").split()
parts = [base]
n = len(base)
while n < 2_170_000:  # the fixture tokenizer makes about 2.1 characters a token
    s = " ".join(random.choice(vocab) for _ in range(14)).capitalize() + ". "
    parts.append(s)
    n += len(s)
open(sys.argv[2], "w").write("".join(parts))
PY
  timeout 590 "${mpi[@]}" "$dir/starattn" generate -m "$model" --device cuda --attn star -b 32768 \
    --tokenizer tests/fixtures/tokenizer/llama3_tokenizer.json --context-file "$out/doc.txt" \
    --query "What is the code word for the copper lantern?" -n 16 --progress off --json
  echo "rc=$?"
  ;;
*)
  echo "unknown: $what" >&2
  exit 2
  ;;
esac
