#!/usr/bin/env bash
# On a machine with several GPUs (the scaling issue; docs/distributed.md): the
# CUDA engine data parallel (ZeRO stage 0: NCCL all-reduce of the gradients)
# launched by torchrun, on a model small enough for one GPU:
#   curve  20 DPO steps on N GPUs against the same run on one GPU: the largest
#          loss and gradient-norm differences (bf16 noise: the sum of the
#          gradients over ranks is ordered otherwise);
#   kill   a rank SIGKILLed mid-run: seconds until the whole job has ended,
#          then a resume from the last checkpoint on N GPUs continues the run;
#   throughput  Llama-3.1-8B (random weights) full fine-tuning with AdamW and a
#          reference at ZERO_STAGE (default 3 here, the seed paper's; 8B fits 2 H200s from stage 2),
#          hh-rlhf and capybara, shared and paired packed rows of 8192, 16 examples
#          per GPU per step: samples/s (median of logged steps 3-10) and the peak
#          memory of every GPU (nvidia-smi sampled); beside `fsdp` it is the
#          scaling issue's table;
#   fsdp   the PyTorch peer under FSDP2 (bench/peer_fsdp.py): its self-check (sharded
#          step = one process's), then samples/s and peak memory per GPU on N GPUs
#          (FSDP_ARGS overrides the benchmark's arguments; default Llama-3.1-8B,
#          hh-rlhf and capybara, both packed layouts).
# Logs and JSON go to $OUT, a short table last. Uses the packed binaries
# (.gpubin, scripts/gpu/pack_binaries.sh) or builds (scripts/gpu/setup.sh).
#   NGPU=8 scripts/gpu/scaling_check.sh [curve|kill|throughput|fsdp]...   (default: curve kill)
# ZERO_STAGE=1, 2 or 3 runs the several-GPU runs at that ZeRO stage (default 0).
set -uo pipefail
OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
steps=("$@")
((${#steps[@]})) || steps=(curve kill)
if [ -f "${DUET_GPUBIN_DIR:-.gpubin}/bundle.tar.xz" ] && [ "${DUET_PACKED:-1}" != 0 ]; then
  source scripts/gpu/unpack_binaries.sh || exit 1
  DUET="$GPUBIN/duet"
else
  DUET_BUILD_TARGETS=duet source scripts/gpu/setup.sh "" || exit 1
  DUET=build-gpu/duet
fi
set +e
N=${NGPU:-$(nvidia-smi -L | wc -l)}
[ "$N" -ge 2 ] || echo "scaling_check: $N GPU(s) visible: the N-GPU runs are one process (no NCCL)"
work=/tmp/duet-scaling
rm -rf "$work" && mkdir -p "$work"
# A ~0.2B Llama (head dim 128, GQA) and hh-rlhf-shaped pre-tokenized data.
cat > "$work/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 1024,
 "intermediate_size": 4096, "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 2,
 "head_dim": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 8192,
 "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
JSON
"$DUET" init --config "$work/config.json" --out "$work/model" > "$OUT/scaling_init.log" 2>&1 || { tail -3 "$OUT/scaling_init.log"; exit 1; }
python3 scripts/make_synthetic_data.py --profile hh-rlhf --examples 4096 --vocab-size 32000 --seed 1 \
  --out "$work/data.jsonl" > /dev/null || exit 1
train() {  # train OUT_NAME PROCESSES [EXTRA...]
  local name=$1 procs=$2
  shift 2
  local args=(train --model "$work/model" --data "$work/data.jsonl" --out "$work/$name" --device cuda
              --layout shared --pack-tokens 4096 --batch-size 64 --learning-rate 5e-5 --seed 1 --no-progress "$@")
  if [ "$procs" -gt 1 ]; then
    torchrun --no-python --standalone --nproc_per_node "$procs" "$DUET" "${args[@]}" --zero-stage "${ZERO_STAGE:-0}"
  else
    "$DUET" "${args[@]}"
  fi
}
summary=()
for step in "${steps[@]}"; do
  case $step in
    curve)
      train one 1 --max-steps 20 > "$OUT/scaling_one.log" 2>&1
      rc1=$?
      train many "$N" --max-steps 20 > "$OUT/scaling_many.log" 2>&1
      rcn=$?
      python3 - "$work/one/metrics.jsonl" "$work/many/metrics.jsonl" "$N" <<'PY' | tee "$OUT/scaling_curve.json"
import json, sys
def steps(path):
    return {r["step"]: r for r in map(json.loads, open(path)) if "loss" in r}
one, many = steps(sys.argv[1]), steps(sys.argv[2])
common = sorted(set(one) & set(many))
dl = max(abs(one[s]["loss"] - many[s]["loss"]) for s in common)
dg = max(abs(one[s]["grad_norm"] - many[s]["grad_norm"]) / one[s]["grad_norm"] for s in common)
print(json.dumps({"gpus": int(sys.argv[3]), "steps": len(common), "max_abs_loss_diff": dl,
                  "max_rel_grad_norm_diff": dg, "loss_first": one[common[0]]["loss"],
                  "loss_last_one": one[common[-1]]["loss"], "loss_last_many": many[common[-1]]["loss"]}))
PY
      summary+=("curve: 1 GPU exit $rc1, $N GPUs exit $rcn, $(tail -1 "$OUT/scaling_curve.json")") ;;
    kill)
      train killed "$N" --max-steps 100000 --save-steps 5 > "$OUT/scaling_killed.log" 2>&1 &
      job=$!
      for _ in $(seq 600); do  # until step 8 is logged (a checkpoint at 5 exists)
        grep -q '"step": *8[,}]' "$work/killed/metrics.jsonl" 2>/dev/null && break
        sleep 0.5
      done
      victim=""
      for p in $(pgrep -f "duet train"); do
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "RANK=$((N > 1 ? 1 : 0))" && victim=$p && break
      done
      t0=$(date +%s.%N)
      [ -n "$victim" ] && kill -9 "$victim"
      for _ in $(seq 1200); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
      ended=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
      kill -0 "$job" 2>/dev/null && { kill -9 "$job"; ended="never (killed after 120 s)"; }
      last=$(ls -d "$work"/killed/checkpoint-* 2>/dev/null | grep -v '\.' | sort -t- -k2 -n | tail -1)
      logged=$(grep -c '"loss"' "$work/killed/metrics.jsonl")
      train killed "$N" --max-steps $((logged + 3)) --save-steps 5 --allow-option-changes max_steps \
        --resume-from-checkpoint "$last" > "$OUT/scaling_resumed.log" 2>&1
      rcr=$?
      cp "$work/killed/metrics.jsonl" "$OUT/scaling_killed_metrics.jsonl"
      summary+=("kill: rank ${victim:+killed (pid $victim)}${victim:-not found}; job ended after $ended s; resume from $(basename "$last") exit $rcr, steps logged $(grep -c '"loss"' "$work/killed/metrics.jsonl")") ;;
    throughput)
      big=$work/8b
      mkdir -p "$big"
      cat > "$big/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
 "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
 "head_dim": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072,
 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
JSON
      "$DUET" init --config "$big/config.json" --out "$big/model" > "$OUT/throughput_init.log" 2>&1
      stage=${ZERO_STAGE:-3}
      for profile in hh-rlhf capybara; do
        python3 scripts/make_synthetic_data.py --profile "$profile" --examples $((16 * N * 12)) --vocab-size 128256 \
          --seed 1 --out "$big/$profile.jsonl" > /dev/null
        for layout in shared paired; do
          name="tp_${profile}_${layout}_$N"
          nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/$name.mem" &
          smi=$!
          torchrun --no-python --standalone --nproc_per_node "$N" "$DUET" train --model "$big/model" \
            --data "$big/$profile.jsonl" --out "$big/$name" --device cuda --layout "$layout" --pack-tokens 8192 \
            --batch-size $((16 * N)) --max-steps 10 --logging-steps 1 --save-steps 0 --zero-stage "$stage" \
            --learning-rate 1e-6 --seed 1 --no-progress > "$OUT/$name.log" 2>&1
          rc=$?
          kill "$smi" 2>/dev/null
          cp "$big/$name/metrics.jsonl" "$OUT/$name.metrics.jsonl" 2>/dev/null
          rm -rf "$big/$name"  # the final model (16 GB) is not needed
          python3 - "$OUT/$name.metrics.jsonl" "$OUT/$name.mem" "$profile" "$layout" "$N" "$stage" "$rc" <<'PY' \
            | tee -a "$OUT/throughput_$N.jsonl"
import json, statistics, sys
metrics, mem, profile, layout, n, stage, rc = sys.argv[1:]
try:
    rows = [r for r in map(json.loads, open(metrics)) if "examples_per_second" in r]
except OSError:
    rows = []
timed = [r["examples_per_second"] for r in rows if r["step"] >= 3]
peak = {}
for line in open(mem):
    try:
        gpu, used = (int(x) for x in line.split(","))
        peak[gpu] = max(peak.get(gpu, 0), used)
    except ValueError:
        pass
print(json.dumps({"tool": "duet", "arch": "llama-3.1-8b", "profile": profile, "layout": layout + "+packed",
                  "gpus": int(n), "zero_stage": int(stage), "exit": int(rc), "steps_timed": len(timed),
                  "samples_per_s": statistics.median(timed) if timed else None,
                  "peak_gib_per_gpu": [round(peak[g] / 1024, 1) for g in sorted(peak)]}))
PY
        done
      done
      summary+=("throughput (ZeRO-$stage, $N GPUs): $(grep -c '"exit": 0' "$OUT/throughput_$N.jsonl") of 4 runs ok") ;;
    fsdp)
      torchrun --standalone --nproc_per_node "$N" bench/peer_fsdp.py --self-check > "$OUT/fsdp_self_check.log" 2>&1
      rcc=$?
      # shellcheck disable=SC2086
      timeout "${FSDP_TIMEOUT:-1800}" torchrun --standalone --nproc_per_node "$N" bench/peer_fsdp.py \
        ${FSDP_ARGS:---arch llama-3.1-8b --profile hh-rlhf,capybara} --json "$OUT/fsdp_$N.jsonl" \
        > "$OUT/fsdp_bench_$N.log" 2>&1
      rcb=$?
      grep -E "PASS|FAIL|samples/s|OOM|error" "$OUT/fsdp_self_check.log" "$OUT/fsdp_bench_$N.log" | head -20
      summary+=("fsdp: self-check exit $rcc ($(tail -1 "$OUT/fsdp_self_check.log")), bench on $N GPUs exit $rcb") ;;
  esac
done
echo "== summary ($N GPUs)"
printf '%s\n' "${summary[@]}"
