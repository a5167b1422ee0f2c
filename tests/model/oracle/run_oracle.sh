#!/bin/bash
# On the GPU test machine: builds oracle_tool with g++ directly (the full
# project needs pcre2, which that machine lacks) and runs hf_oracle.py.
# usage: tests/model/oracle/run_oracle.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/../../.."
work=${1:-/tmp/duet-oracle}
mkdir -p "$work"
g++ -std=c++20 -O2 -ffp-contract=off -Isrc src/util/error.cpp src/model/*.cpp \
  tests/model/oracle/oracle_tool.cpp -lfmt -o "$work/oracle_tool"
python3 tests/model/oracle/hf_oracle.py "$work/oracle_tool" "$work/work"
