#!/usr/bin/env bash
# A rank that fails during the start-up of `starattn generate` (CPU ranks) must end every rank
# within 10 s, with the failure printed once, whatever it throws. ctest runs this with the paths:
#   startup_fault_test.sh NP STAGE|realistic STARATTN MAKE_FAULT_MODEL TOKENIZER REAL_MODEL
#                         MPIEXEC [MPI FLAGS...]
# STAGE (args, load, backend, tensor_comm, generate): rank 1 fails there through the app's
# fault injection (STARATTN_FAULT, src/app/ranks.h), once for each way of failing: a
# starattn::Error, a std::filesystem::filesystem_error, a std::bad_alloc, and death by SIGKILL.
# The 10 s run from the moment of the fault, which the failing rank prints. The model is a tiny
# one (make_fault_model) read with the fixture tokenizer, so start-up itself takes no time.
# realistic: failures without injection, timed from the start. In rank 1's working directory the
# model's folder is a loop of symbolic links (std::filesystem throws on it, even for root); then,
# with the real model (skipped when models/ lacks it), rank 1 runs out of memory under
# `ulimit -v` while it loads the model.
set -u
np=$1 stage=$2 bin=$3 make_model=$4 tokenizer=$5 real_model=$6
shift 6
mpi=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=$work/tiny.gguf
"$make_model" "$model" || { echo "FAIL: cannot write the tiny model"; exit 1; }
failed=0

# expect MAX_S TEXT COMMAND...: the job exits non-zero, not killed by the timeout, with TEXT in
# its output exactly once, within MAX_S seconds of the injected fault (or of its start).
expect() {
  # STARATTN_TIME_SCALE: as in expect_fast_failure.sh (the sanitized build is slower).
  local max=$(($1 * ${STARATTN_TIME_SCALE:-1})) text=$2
  shift 2
  echo "=== $*"
  local start end out rc seen since why=""
  start=$(date +%s.%N)
  out=$(timeout -k 2 60 "$@" 2>&1)
  rc=$?
  end=$(date +%s.%N)
  printf '%s\n' "$out"
  since=$(printf '%s\n' "$out" | sed -n 's/.*fault injection: .*unix time \([0-9.]*\).*/\1/p' | head -1)
  [ -n "$since" ] || since=$start
  seen=$(printf '%s\n' "$out" | grep -cF -- "$text")
  local took
  took=$(awk -v a="$end" -v b="$since" 'BEGIN { printf "%.2f", a - b }')
  echo "--- exit $rc, $took s after the fault (or start), '$text' seen $seen times"
  [ "$rc" -ne 0 ] || why="the job exited 0"
  # mpirun itself exits 137 when a rank died of SIGKILL, so a hang is told by the time it took.
  awk -v a="$end" -v b="$start" 'BEGIN { exit !(a - b < 59) }' || why="the job hung and was killed"
  awk -v t="$took" -v m="$max" 'BEGIN { exit !(t <= m) }' || why="slower than $max s"
  [ "$seen" -eq 1 ] || why="expected '$text' once"
  if [ -n "$why" ]; then
    echo "FAIL: $why"
    failed=1
  fi
}

args=(generate -m "$model" --tokenizer "$tokenizer" -p "The capital of France is" -n 4
      --progress off)
if [ "$stage" = realistic ]; then
  mkdir -p "$work/good/weights" "$work/loop"
  ln -s "$model" "$work/good/weights/m.gguf"
  ln -s weights "$work/loop/weights"
  rel=(generate -m weights/m.gguf --tokenizer "$tokenizer" -p hi -n 4 --progress off)
  # MPMD: rank 1 in loop/, every other rank in good/.
  more=()
  [ "$np" -gt 2 ] && more=(: -np $((np - 2)) -wdir "$work/good" "$bin" "${rel[@]}")
  expect 10 "Too many levels of symbolic links" "${mpi[@]}" -np 1 -wdir "$work/good" "$bin" \
    "${rel[@]}" : -np 1 -wdir "$work/loop" "$bin" "${rel[@]}" "${more[@]}"
  if ldd "$bin" | grep -q libcudart; then
    # The CUDA runtime, cuBLAS and NCCL need over a GB of address space just to load, and
    # OpenBLAS spins rather than fails when its buffers cannot be mapped: `ulimit -v` cannot model
    # running out of memory there. The bad_alloc fault below covers the same handling.
    echo "(a CUDA build: the out-of-memory case is skipped)"
  elif [ -f "$real_model" ]; then
    # 600 MB of address space: enough to start (MPI, OpenMP, OpenBLAS), not to hold the real
    # model's weights as fp32 (about 0.5 GB) beside its mapped file (its native Q4_1 blocks would
    # fit). Timed from the start (20 s: the allocation fails a few seconds into the load).
    big=(generate -m "$real_model" --weights-type f32 -p hi -n 4 --progress off)
    more=()
    [ "$np" -gt 2 ] && more=(: -np $((np - 2)) "$bin" "${big[@]}")
    expect 20 "out of memory" "${mpi[@]}" -np 1 "$bin" "${big[@]}" : -np 1 bash -c \
      'ulimit -v 600000 && exec "$0" "$@"' "$bin" "${big[@]}" "${more[@]}"
  else
    echo "(no $real_model: the out-of-memory case is skipped)"
  fi
else
  for kind in error filesystem bad_alloc kill; do
    case $kind in
      error | filesystem) text="injected fault at $stage" ;;
      bad_alloc) text="out of memory" ;;
      kill) text="signal 9" ;;  # mpirun's report of the killed rank
    esac
    # Ranks on this host inherit the variable from mpirun.
    expect 10 "$text" env STARATTN_FAULT="$stage:1:$kind" "${mpi[@]}" -np "$np" "$bin" "${args[@]}"
  done
fi
[ $failed -eq 0 ] && echo "PASS" || { echo "FAIL"; exit 1; }
