#!/usr/bin/env bash
# Builds (if needed) and runs the whole test suite: unit tests, MPI tests with 1-4 ranks, and the
# real-model tests (skipped, and said so, when models/ has no default model; scripts/setup.sh
# fetches it). Usage: scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
cd build
# OpenMPI refuses root unless told; CI runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --output-on-failure --timeout 600 "$@"
