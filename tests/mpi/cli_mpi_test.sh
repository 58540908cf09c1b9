#!/usr/bin/env bash
# The CLI under mpirun (ctest runs this with the paths filled in):
#   cli_mpi_test.sh MODE STARATTN MODEL MPIEXEC [MPI FLAGS...]
# MODE answer:    `mpirun -np 4 starattn generate --attn {star,ring,dense}` answers a needle question
#                 about examples/harbor_report.txt, printing the answer once.
# MODE rankfail:  one rank cannot open the model (its working directory lacks it): every rank exits
#                 within seconds, the error printed once.
# MODE mismatch:  ranks given different --block-size: a clear error, printed once.
# MODE chat:      `generate --interactive` on 2 ranks: rank 0 reads the messages, every rank runs
#                 each turn; two turns, each printed once, with the tokens of a 1-rank run (Star
#                 Attention's result depends on B and A only).
# MODE prompt:    `generate -p` on 2 ranks with --attn star says once that the prompt runs as the
#                 query (nothing is spread); --attn dense and one rank say nothing of it.
# MODE progress:  `generate --context-file` on 2 ranks, --progress left at auto (mpirun gives the
#                 ranks a pipe), OMP_NUM_THREADS unset: one loading line, whose threads per rank
#                 (the default) do not oversubscribe the cores; any progress line speaks of the
#                 slowest rank and has a rate; rank 0, whose block has no anchor, finishes first
#                 and says how long the slowest rank still needs.
set -u
mode=$1 bin=$2 model=$3
shift 3
mpi=("$@")
[ -f "$model" ] || { echo "SKIP: no $model (run scripts/setup.sh)"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The README's example: ~4100 tokens with one fact (the gate password) in the middle.
doc=$(dirname "$0")/../../examples/harbor_report.txt
q="What is the password for the north gate?"

case $mode in
  answer)
    for attn in star ring dense; do
      out=$(timeout 300 "${mpi[@]}" -np 4 "$bin" generate -m "$model" --chat --attn "$attn" \
              --context-file "$doc" --query "$q" -n 24 --progress off 2>&1)
      rc=$?
      echo "--- $attn: exit $rc"; echo "$out"
      [ $rc -eq 0 ] || fail "$attn exited $rc"
      echo "$out" | grep -q "COPPER-LANTERN-58" || fail "$attn did not find the password"
      [ "$(echo "$out" | grep -o 'timing:' | wc -l)" -eq 1 ] || fail "$attn: output not printed exactly once"
    done ;;
  rankfail)
    mkdir -p "$work/good/models" "$work/bad"
    ln -s "$(realpath "$model")" "$work/good/models/m.gguf"
    start=$(date +%s)
    out=$(timeout 60 "${mpi[@]}" -np 1 -wdir "$work/good" "$bin" generate -m models/m.gguf -p hi : \
            -np 1 -wdir "$work/bad" "$bin" generate -m models/m.gguf -p hi 2>&1)
    rc=$?
    echo "$out"; echo "exit $rc after $(( $(date +%s) - start )) s"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "expected a non-zero exit, not $rc"
    [ "$(echo "$out" | grep -c 'not found')" -eq 1 ] || fail "the error should be printed once" ;;
  mismatch)
    out=$(timeout 60 "${mpi[@]}" -np 1 "$bin" generate -m "$model" -p hi -b 8 : \
            -np 1 "$bin" generate -m "$model" -p hi -b 9 2>&1)
    rc=$?
    echo "$out"; echo "exit $rc"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "expected a non-zero exit, not $rc"
    [ "$(echo "$out" | grep -c 'starattn: error:.*arguments')" -eq 1 ] || fail "one 'arguments' error line expected" ;;
  chat)
    printf '%s' "Mira keeps her bicycle in the blue shed behind the bakery. The lock on the blue \
shed opens with the code 2741. Her brother Tom keeps his kayak in the garage." > "$work/ctx.txt"
    printf 'Where does Mira keep her bicycle?\nWhat code opens that place?\n' > "$work/in.txt"
    for np in 1 2; do
      # fp32 weights and cache: 1 and 2 ranks merge the same attention in different groupings,
      # equal to fp32 rounding. bf16 rows (the default cache) would round some of that up to a bf16
      # step, and the quantised kernels (native weights) round each activation row to 8 bits, so
      # such differences moved the second turn's logprobs by 0.06 here and can flip a greedy token.
      timeout 300 "${mpi[@]}" -np $np "$bin" generate -m "$model" -i --context-file "$work/ctx.txt" \
        -b 16 -n 24 --json --progress off --weights-type f32 --kv-type f32 < "$work/in.txt" \
        > "$work/out$np.txt" 2>&1
      rc=$?
      echo "--- $np rank(s): exit $rc"; cat "$work/out$np.txt"
      [ $rc -eq 0 ] || fail "$np rank(s): exited $rc"
      [ "$(grep -c '^{' "$work/out$np.txt")" -eq 2 ] || fail "$np rank(s): expected two turns, each printed once"
    done
    tokens() { grep '^{' "$1" | sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/'; }
    [ "$(tokens "$work/out1.txt")" = "$(tokens "$work/out2.txt")" ] || fail "2 ranks answered differently from 1" ;;
  prompt)
    note="run the whole prompt as the query"
    for np_attn in "2 star" "2 ring" "2 dense" "1 star"; do
      set -- $np_attn
      out=$(timeout 120 "${mpi[@]}" -np $1 "$bin" generate -m "$model" -p "Name a colour." -n 4 \
              --attn $2 --progress off 2>&1)
      rc=$?
      echo "--- $1 rank(s), $2: exit $rc"; echo "$out"
      [ $rc -eq 0 ] || fail "$1 rank(s), $2: exited $rc"
      want=0; [ $1 -gt 1 ] && [ $2 != dense ] && want=1
      [ "$(echo "$out" | grep -c "$note")" -eq $want ] || fail "$1 rank(s), $2: expected $want note(s)"
    done ;;
  progress)
    head -c 3000 "$doc" > "$work/ctx.txt"
    env -u OMP_NUM_THREADS timeout 300 "${mpi[@]}" -np 2 "$bin" generate -m "$model" \
      --context-file "$work/ctx.txt" --query "$q" --chunk 128 -n 4 > "$work/out.txt" 2> "$work/err.txt"
    rc=$?
    echo "--- exit $rc"; cat "$work/err.txt"
    [ $rc -eq 0 ] || fail "exited $rc"
    [ "$(grep -c '^loading ' "$work/err.txt")" -eq 1 ] || fail "one loading line expected"
    threads=$(sed -n 's/^loading .*(2 ranks, \([0-9]*\) CPU thread.*/\1/p' "$work/err.txt")
    cores=$(nproc); [ "$cores" -lt 2 ] && cores=2
    [ -n "$threads" ] && [ "$threads" -ge 1 ] && [ $(( 2 * threads )) -le "$cores" ] ||
      fail "'$threads' threads per rank for 2 ranks on $cores cores"
    if grep '^phase 1 \[' "$work/err.txt" | grep -v 'of the slowest of 2 ranks' | grep -q .; then
      fail "a progress line that does not speak of the slowest rank"
    fi
    if grep '^phase 1 \[' "$work/err.txt" | grep -v 'tok/s, ETA ' | grep -q .; then
      fail "a progress line without a rate and an ETA"
    fi
    [ "$(grep -c '^phase 1: rank 0 is done; the slowest rank needs about' "$work/err.txt")" -eq 1 ] ||
      fail "rank 0 should say once how long the slowest rank still needs" ;;
  *) fail "unknown mode $mode" ;;
esac
echo PASS
