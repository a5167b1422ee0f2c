#!/usr/bin/env bash
# Sourced on the GPU test machine (Ubuntu 24.04, no package registry): unpacks
# the Debian packages it lacks (carried in .debs/, see docs/gpu-machine.md) and
# configures + builds duet with them.  Usage: source scripts/gpu/setup.sh [LAYERS]
set -euo pipefail
deb_root=/tmp/deb
mkdir -p "$deb_root"
for f in .debs/*.deb; do dpkg -x "$f" "$deb_root"; done
export LD_LIBRARY_PATH="$deb_root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
layers="${1:-util;tokenizer;data;layout;model;backend;engine;loss;trainer;bench;cli}"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deb_root/usr" \
  "-DDUET_LAYERS=$layers" > "${OUT:-/tmp}/cmake.log" 2>&1 || { tail -30 "${OUT:-/tmp}/cmake.log"; exit 1; }
cmake --build build-gpu -j16 ${DUET_BUILD_TARGETS:+--target $DUET_BUILD_TARGETS} > "${OUT:-/tmp}/build.log" 2>&1 || { grep -E "error" "${OUT:-/tmp}/build.log" | head -30; exit 1; }
