#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++, ASan + UBSan, build folder build-fuzz/)
# and runs each for a time or a number of inputs; docs/fuzzing.md.
#   scripts/fuzz.sh [--seconds N | --runs N] [--jobs N] [TARGET...]
# Targets: tokenizer_json example_line config_json safetensors trainer_state
# adapter_config ref_cache (default: all).
# New inputs go to a scratch corpus (build-fuzz/work/TARGET, kept between runs);
# the seeds in fuzz/corpus/ are only read. A crash leaves its input in
# build-fuzz/work/crash-TARGET-* and makes the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-max_total_time=60)
jobs=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(tokenizer_json example_line config_json safetensors trainer_state adapter_config
                                     ref_cache)
build=build-fuzz
# The layers the targets need (trainer_state and ref_cache: trainer; adapter_config: engine).
layers="util;tokenizer;layout;data;model;backend;dist;engine;loss;trainer"
# Configured on first use, and again when build-fuzz/ was configured with another layer list.
if [ ! -f "$build/build.ninja" ] || ! grep -qxF "DUET_LAYERS:STRING=$layers" "$build/CMakeCache.txt"; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DDUET_FUZZ=ON \
    -DDUET_CUDA=OFF -DDUET_TESTS=OFF -DDUET_BENCH=OFF "-DDUET_LAYERS=$layers" >/dev/null
fi
cmake --build "$build" -j"$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}")
status=0
for t in "${targets[@]}"; do
  work="$build/work/$t"
  mkdir -p "$work"
  log="$build/work/$t.log"
  echo "== fuzz_$t ${limit[*]}"
  if ASAN_OPTIONS=detect_leaks=1 "$build/fuzz/fuzz_$t" "${limit[@]}" -timeout=10 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$build/work/crash-$t-" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    secs=$(grep -o 'stat::slowest_unit_time_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz_$t: $runs inputs, no crash (slowest input ${secs} s; corpus $(ls "$work" | wc -l) files)"
  else
    status=1
    echo "fuzz_$t: FAILED; the end of $log:"
    tail -40 "$log"
  fi
done
exit $status
