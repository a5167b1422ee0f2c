#!/usr/bin/env bash
# On the GPU test machine: builds duet, runs the CUDA tests (ctest -L cuda),
# compares the CUDA engine with transformers (scripts/gpu/compare_cuda.py) and
# runs the CUDA benchmarks; logs and JSON go to $OUT, a short table is printed
# last. Carry: .debs (scripts/gpu/gather_debs.sh). See docs/gpu-machine.md.
#   scripts/gpu/cuda_check.sh [sm90|tests|engine|compare|gemm|attention|steps|peer|lora|auto|zero3|tuning]...
#   (default: tests compare attention steps; BENCH_ARGS / PEER_ARGS override the
#   whole-step benchmarks' arguments, PEER_TIMEOUT bounds the peer in seconds, TUNING_PASSES (default 2) how often the tuning step alternates,
#   TUNING_MODELS (default "1b 8b") which models it runs)
set -uo pipefail
OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
steps=("$@")
((${#steps[@]})) || steps=(tests compare attention steps)
start=$(date +%s)
if [ -f "${DUET_GPUBIN_DIR:-.gpubin}/bundle.tar.xz" ] && [ "${DUET_PACKED:-1}" != 0 ]; then
  # Binaries built on the development machine (scripts/gpu/pack_binaries.sh): no build here.
  source scripts/gpu/unpack_binaries.sh || exit 1
  echo "packed binaries: $(cat "$GPUBIN/commit" 2>/dev/null)"
else
  export DUET_BUILD_TARGETS="${DUET_BUILD_TARGETS-duet test_cuda_ops test_cuda_attention test_cuda_engine test_dist_nccl bench_attention_cuda bench_gemm_cuda}"
  source scripts/gpu/setup.sh "" || exit 1
  echo "build: $(( $(date +%s) - start )) s"
fi
set +e
# Where a binary is: the unpacked bundle, or the build folder.
bin() { if [ -n "${GPUBIN:-}" ]; then echo "$GPUBIN/$1"; else find build-gpu -type f -name "$1" -perm -u+x | head -1; fi; }
DUET=$(bin duet)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
summary=()
# A 0.2B Llama with random weights in $1/model and 1024 hh-rlhf-shaped examples (seed $2) in $1/data.jsonl.
small_llama() {
  printf '%s' '{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
    "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 8, "num_attention_heads": 8,
    "num_key_value_heads": 2, "head_dim": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "max_position_embeddings": 8192, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}' > "$1/config.json"
  "$DUET" init --config "$1/config.json" --out "$1/model" &&
    python3 scripts/make_synthetic_data.py --profile hh-rlhf --examples 1024 --vocab-size 32000 --seed "$2" \
      --out "$1/data.jsonl"
}
for step in "${steps[@]}"; do
  t0=$(date +%s)
  case $step in
    sm90)  # the Hopper attention kernels (forward and backward) alone first: a hang or fault stays here
      timeout 180 "$(bin test_cuda_attention)" --gtest_filter='CudaAttentionSm90.*' \
        > "$OUT/sm90_tests.log" 2>&1
      rc=$?
      grep -E "OK \]|FAILED|worst|error" "$OUT/sm90_tests.log" | head -30
      if [ $rc -ne 0 ]; then  # where it faults: memcheck on the smallest case
        timeout 120 compute-sanitizer --tool memcheck "$(bin test_cuda_attention)" \
          --gtest_filter='CudaAttentionSm90.CausalRow' > "$OUT/sm90_memcheck.log" 2>&1
        grep -m 12 -E "Invalid|ERROR SUMMARY|at 0x|by thread" "$OUT/sm90_memcheck.log"
      else
        # side by side: every mma.sync kernel, then every Hopper kernel (forward and backward)
        DUET_ATTENTION_SM90=0 DUET_ATTENTION_BWD_SM90=0 timeout 240 "$(bin bench_attention_cuda)" \
          > "$OUT/bench_attention_mma.txt" 2>&1
        DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 240 "$(bin bench_attention_cuda)" \
          > "$OUT/bench_attention_sm90.txt" 2>&1
        tail -16 "$OUT/bench_attention_mma.txt"; tail -16 "$OUT/bench_attention_sm90.txt"
      fi
      summary+=("sm90 attention tests: exit $rc") ;;
    gemm)  # duet's Gemm (heuristic) against the best of 16 timed cuBLASLt candidates
      "$(bin bench_gemm_cuda)" > "$OUT/bench_gemm.txt" 2>&1
      rc=$?
      tail -30 "$OUT/bench_gemm.txt"
      summary+=("gemm bench: exit $rc") ;;
    tests)
      if [ -n "${GPUBIN:-}" ]; then  # no CTest without a build folder: each CUDA test binary in turn
        rc=0
        for t in test_cuda_ops test_cuda_attention test_cuda_engine test_dist_nccl; do
          [ -x "$GPUBIN/$t" ] || continue
          echo "== $t" >> "$OUT/ctest_cuda.log"
          timeout "${TEST_TIMEOUT:-420}" "$GPUBIN/$t" --gtest_filter='-CudaAttentionSm90.*' >> "$OUT/ctest_cuda.log" 2>&1 || rc=1
        done
        grep -E "^\[  (PASSED|FAILED) " "$OUT/ctest_cuda.log" | head -20
      else
        GTEST_FILTER='-CudaAttentionSm90.*' ctest --test-dir build-gpu -L cuda --timeout 300 --output-on-failure -j1 > "$OUT/ctest_cuda.log" 2>&1
        rc=$?
      fi
      grep -E "^\s+[0-9]+/[0-9]+ Test.*(Failed|\*\*\*)" "$OUT/ctest_cuda.log" | head -20
      grep -hE "worst|loss:" "$OUT/ctest_cuda.log" | head -20
      if [ -n "${GPUBIN:-}" ]; then
        summary+=("tests: exit $rc, $(grep -c '^\[       OK \]' "$OUT/ctest_cuda.log") passed, $(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$OUT/ctest_cuda.log") failed")
      else
        summary+=("tests: exit $rc, $(grep -E 'tests passed' "$OUT/ctest_cuda.log")")
      fi ;;
    engine)  # the CUDA engine test binary alone, with the figures it prints
      "$(bin test_cuda_engine)" > "$OUT/test_cuda_engine.log" 2>&1
      rc=$?
      grep -E "worst|loss:|PASSED|FAILED" "$OUT/test_cuda_engine.log"
      summary+=("engine test: exit $rc") ;;
    compare)
      PYTHONUNBUFFERED=1 python3 scripts/gpu/compare_cuda.py --duet "$DUET" --out "$OUT/compare_cuda.json" \
        > "$OUT/compare_cuda.txt" 2>&1
      rc=$?
      tail -12 "$OUT/compare_cuda.txt"
      summary+=("compare vs transformers: exit $rc") ;;
    attention)  # the attention kernels against FlexAttention / SDPA on the same rows
      "$(bin bench_attention_cuda)" --dump /tmp/duet-rows > "$OUT/bench_attention.txt" 2>&1
      rc=$?
      PYTHONUNBUFFERED=1 python3 bench/attention_peer.py --dump /tmp/duet-rows > "$OUT/attention_peer.txt" 2>&1
      rc2=$?
      tail -20 "$OUT/bench_attention.txt"; tail -20 "$OUT/attention_peer.txt"
      summary+=("attention bench: exit $rc / peer $rc2") ;;
    steps)  # whole DPO steps: duet bench at 1B on two profiles (docs/bench.md has the full table's commands)
      "$DUET" bench ${BENCH_ARGS:---arch llama-3.2-1b --profile hh-rlhf,capybara --examples-per-step 64} \
        --json "$OUT/bench_steps.jsonl" > "$OUT/bench_steps.txt" 2>&1
      rc=$?
      cat "$OUT/bench_steps.txt"
      summary+=("duet bench: exit $rc") ;;
    lora)  # LoRA on the CUDA engine: against peft both ways, then 8B LoRA steps beside the peer with peft
      PYTHONUNBUFFERED=1 python3 scripts/gpu/compare_lora.py --duet "$DUET" --device cuda \
        --out "$OUT/compare_lora.json" > "$OUT/compare_lora.txt" 2>&1
      rc=$?
      tail -8 "$OUT/compare_lora.txt"
      "$DUET" bench ${LORA_ARGS:---arch llama-3.1-8b --profile hh-rlhf,capybara \
        --layout shared+packed --examples-per-step 32 --steps 2 --warmup 1} --use-peft --breakdown \
        --json "$OUT/bench_lora.jsonl" > "$OUT/bench_lora.txt" 2>&1
      rc2=$?
      cat "$OUT/bench_lora.txt"
      timeout "${PEER_TIMEOUT:-300}" python3 bench/peer_pytorch.py ${LORA_PEER_ARGS:---arch llama-3.1-8b \
        --profile hh-rlhf,capybara --layout shared-packed --examples-per-step 32 --steps 2 --warmup 1} --use-peft \
        --json "$OUT/peer_lora.jsonl" > "$OUT/peer_lora.txt" 2>&1
      rc3=$?
      tail -6 "$OUT/peer_lora.txt"
      summary+=("lora: compare exit $rc, duet bench exit $rc2, peer exit $rc3") ;;
    auto)  # duet train without --device on this GPU machine: the CUDA engine must be picked
      w=/tmp/duet-auto && rm -rf "$w" && mkdir -p "$w"
      printf '%s' '{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 4096,
        "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 2048, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}' > "$w/config.json"
      "$DUET" init --config "$w/config.json" --out "$w/model" > "$OUT/auto.log" 2>&1 &&
        python3 scripts/make_synthetic_data.py --profile hh-rlhf --examples 64 --vocab-size 4096 --seed 1 \
          --out "$w/data.jsonl" >> "$OUT/auto.log" 2>&1 &&
        "$DUET" train --model "$w/model" --data "$w/data.jsonl" --out "$w/run" --max-steps 3 --batch-size 16 \
          --no-progress >> "$OUT/auto.log" 2>&1
      rc=$?
      engine=$(python3 -c "import json,glob; f=sorted(glob.glob('$w/run/**/trainer_state.json', recursive=True));
print(json.load(open(f[-1]))['options']['device'] if f else 'no trainer_state.json')" 2>/dev/null)
      [ "$engine" = cuda ] || rc=1
      tail -3 "$OUT/auto.log"
      summary+=("auto device: exit $rc, engine ${engine:-none}") ;;
    zero3)  # ZeRO stages through duet train on one GPU: one process, and one NCCL rank under torchrun
      # (stage 0 there sums each layer's gradients during the step's last backward)
      w=/tmp/duet-zero3 && rm -rf "$w" && mkdir -p "$w"
      small_llama "$w" 1 > "$OUT/zero3.log" 2>&1
      rc=0
      # The stages are compared bit for bit: every process computes with
      # cuBLASLt's heuristic algorithms (each would time its own otherwise).
      export DUET_GEMM_AUTOTUNE=0
      for run in "stage0 1 0" "stage2 1 2" "stage3 1 3" "stage0_nccl torchrun 0" "stage1_nccl torchrun 1" \
                 "stage3_nccl torchrun 3"; do
        set -- $run
        args=(train --model "$w/model" --data "$w/data.jsonl" --out "$w/$1" --device cuda --layout shared
              --pack-tokens 4096 --batch-size 64 --max-steps 12 --logging-steps 1 --save-steps 0
              --learning-rate 5e-5 --seed 1 --no-progress --zero-stage "$3")
        if [ "$2" = torchrun ]; then
          timeout 300 torchrun --no-python --standalone --nproc_per_node 1 "$DUET" "${args[@]}" >> "$OUT/zero3.log" 2>&1
        else
          timeout 300 "$DUET" "${args[@]}" >> "$OUT/zero3.log" 2>&1
        fi || { rc=1; echo "zero3: $1 failed"; }
        cp "$w/$1/metrics.jsonl" "$OUT/zero3_$1.metrics.jsonl" 2>/dev/null
      done
      for z in 0 2 3; do  # the estimate of each stage for these rows, beside the measured peaks
        echo "stage $z estimate: $("$DUET" estimate-memory --config "$w/config.json" --data "$w/data.jsonl" \
          --pack-tokens 4096 --batch-size 64 --gpus 1 --zero-stage $z --gpu-gib 141 --json |
          python3 -c 'import json,sys; print(round(json.load(sys.stdin)["total_gib"], 2))') GiB"
      done | tee "$OUT/zero3_estimates.txt"
      python3 - "$OUT" <<'PY' | tee "$OUT/zero3_summary.txt"
import json, statistics, sys
out = sys.argv[1]
def load(name):
    try:
        return [r for r in map(json.loads, open(f"{out}/zero3_{name}.metrics.jsonl")) if "loss" in r and "step" in r]
    except OSError:
        return []
base = load("stage0")
for name in ("stage0", "stage2", "stage3", "stage0_nccl", "stage1_nccl", "stage3_nccl"):
    rows = load(name)
    if not rows or len(rows) != len(base):
        print(f"{name:12s} missing or short ({len(rows)} of {len(base)} steps)")
        continue
    loss = max(abs(a["loss"] - b["loss"]) for a, b in zip(rows, base))
    norm = max(abs(a["grad_norm"] - b["grad_norm"]) / b["grad_norm"] for a, b in zip(rows, base))
    rate = statistics.median(r["examples_per_second"] for r in rows if r["step"] >= 3)
    peak = max(r.get("gpu_memory_gib", 0) for r in rows)
    print(f"{name:12s} steps {len(rows)}  max |loss - stage0| {loss:.3e}  max rel grad-norm diff {norm:.2e}  "
          f"samples/s {rate:.2f}  peak GiB {peak:.2f}")
PY
      grep -q "missing" "$OUT/zero3_summary.txt" && rc=1
      unset DUET_GEMM_AUTOTUNE
      summary+=("zero3: exit $rc") ;;
    tuning)  # the matrix products timed at reserve (docs/cuda-engine.md): a resume computes with the
      # interrupted run's algorithms (its losses bit for bit), and whole steps tuned beside untuned
      w=/tmp/duet-tuning && rm -rf "$w" && mkdir -p "$w"
      small_llama "$w" 2 > "$OUT/tuning.log" 2>&1
      args=(train --model "$w/model" --data "$w/data.jsonl" --device cuda --layout shared --pack-tokens 4096
            --batch-size 32 --max-steps 8 --logging-steps 1 --save-steps 4 --learning-rate 5e-5 --seed 1 --no-progress)
      timeout 300 "$DUET" "${args[@]}" --out "$w/full" >> "$OUT/tuning.log" 2>&1; rc=$?
      mkdir -p "$w/resumed" && cp -r "$w/full/checkpoint-4" "$w/resumed/"
      timeout 300 "$DUET" "${args[@]}" --out "$w/resumed" --resume-from-checkpoint "$w/resumed/checkpoint-4" \
        >> "$OUT/tuning.log" 2>&1 || rc=1
      grep -E "matrix products ready|timed afresh" "$OUT/tuning.log"
      python3 - "$w" <<'PY' | tee "$OUT/tuning_resume.txt"
import json, sys
w = sys.argv[1]
def losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, open(f"{w}/{run}/metrics.jsonl")) if "loss" in r and "step" in r}
full, resumed = losses("full"), losses("resumed")
steps = [s for s in sorted(resumed) if s > 4]
same = steps and all(full[s] == resumed[s] for s in steps)
print(f"resume with the saved algorithms: steps {steps} losses {'identical' if same else 'DIFFER'}: "
      + " ".join(f"{full[s]:.6f}/{resumed[s]:.6f}" for s in steps))
PY
      grep -q identical "$OUT/tuning_resume.txt" || rc=1
      python3 -c 'import sys; t = open(sys.argv[1]).read()
print("checkpoint-4 keeps", max(0, t.count("\n") - 1), "tuned algorithms;", t.split("\n")[0])' \
        "$w/full/checkpoint-4/gemm_algorithms.txt" | tee -a "$OUT/tuning_resume.txt"
      for pass in $(seq "${TUNING_PASSES:-2}"); do  # alternating, so drift falls on both alike
        for t in 0 16; do
          for model in ${TUNING_MODELS:-1b 8b}; do
            [ "$model" = 8b ] && [ "$pass" != 1 ] && continue  # 8B: one pass (device time)
            if [ "$model" = 1b ]; then bench_args=(--arch llama-3.2-1b --profile hh-rlhf,capybara --examples-per-step 64)
            else bench_args=(--arch llama-3.1-8b --no-optimizer --profile capybara --examples-per-step 32 --steps 2 --warmup 1); fi
            f="$OUT/tuning_bench${model}_t${t}_$pass.txt"
            w0=$(date +%s.%N)  # the wall time's difference between t=16 and t=0 is the tuning's cost
            DUET_GEMM_AUTOTUNE=$t timeout 200 "$DUET" bench "${bench_args[@]}" --layout shared+packed > "$f" 2>&1 || rc=1
            python3 -c "import time; print(round(time.time() - $w0, 1))" > "$f.wall"
          done
        done
      done
      for f in "$OUT"/tuning_bench*.txt; do echo "== $(basename "$f") ($(cat "$f.wall") s wall)"; grep -E "packed" "$f"; done
      summary+=("tuning: exit $rc") ;;
    peer)  # the PyTorch peer on the same GPU (bench/peer_pytorch.py, docs/peer.md)
      timeout "${PEER_TIMEOUT:-600}" python3 bench/peer_pytorch.py ${PEER_ARGS:---arch llama-3.2-1b --profile hh-rlhf} \
        --json "$OUT/peer.jsonl" > "$OUT/peer.txt" 2>&1
      rc=$?
      tail -15 "$OUT/peer.txt"
      summary+=("peer: exit $rc") ;;
  esac
  summary[-1]+=" ($(( $(date +%s) - t0 )) s)"
done
echo "== summary"
printf '%s\n' "${summary[@]}"
# The device tool returns only a few files: past 6, everything goes into one archive
# (ARCHIVE_OUT=0 leaves $OUT as it is: for a script that calls this one and logs there too).
if [ "${ARCHIVE_OUT:-1}" != 0 ] && [ "$(find "$OUT" -type f | wc -l)" -gt 6 ]; then
  tar -C "$OUT" -czf /tmp/duet-logs.tgz . && find "$OUT" -mindepth 1 -delete && mv /tmp/duet-logs.tgz "$OUT/logs.tgz"
fi
