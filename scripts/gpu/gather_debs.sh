#!/usr/bin/env bash
# Run HERE (Debian 12, with its package registry): downloads into .debs/ the
# Debian packages the GPU test machine lacks (it has no registry; see
# docs/gpu-machine.md). scripts/gpu/setup.sh unpacks them there. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .debs
cd .debs
packages=(
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3  # tokenizer regexes
  libutf8proc-dev libutf8proc2                                            # Unicode normalisation
  libxxhash-dev                                                           # cache keys (header-only use)
  libbenchmark-dev libbenchmark1debian                                    # bench/ (Google Benchmark)
  libyaml-cpp-dev libyaml-cpp0.7                                          # YAML config files
)
missing=()
for p in "${packages[@]}"; do ls "${p}"_*.deb > /dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then apt-get download "${missing[@]}"; fi
ls -1 *.deb
