#!/usr/bin/env bash
# Builds the current source (test_cuda_attention, bench_attention_cuda) with
# pack_binaries.sh, then adds the variant binaries kept in build-attn/variants/
# (copies of earlier builds) to the same bundle.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
DUET_BUILD_DIR=build-attn DUET_GPUBIN_DIR=.gpubin-attn scripts/gpu/pack_binaries.sh test_cuda_attention bench_attention_cuda
cp build-attn/variants/* build-attn/gpubin/
tar -cf - -C build-attn/gpubin . | xz -T0 -6 > .gpubin-attn/bundle.tar.xz
tar -tJf .gpubin-attn/bundle.tar.xz | grep -v lib/ | tr '\n' ' '; echo
