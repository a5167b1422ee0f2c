#pragma once
// Times steady-state DPO steps of an engine on a set of examples in one
// layout: rows built as the trainer builds them, reference forward (when the
// engine has one), policy forward and backward row by row with the sigmoid
// loss normalised by the step's pairs, then the optimizer step (optional, as
// in the paper's 8B runs). Rows are laid out before the timed steps, so the
// figures are the engine's; the layout cost is reported beside them.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench/flops.hpp"
#include "engine/engine.hpp"
#include "layout/example.hpp"

namespace duet::bench {

struct StepBenchOptions {
  layout::Layout layout = layout::Layout::shared;
  int64_t pack_tokens = 0;  // 0: one example per row, exact length
  int64_t examples_per_step = 64;
  int steps = 10, warmup = 3;
  bool optimizer = true;
  double peak_tflops = 989.0;  // H100/H200 SXM dense bf16
  bool breakdown = false;      // time the engine's ops by kind (CUDA events; adds a little overhead)
  Trained trained;             // a LoRA adapter on a frozen base, for the FLOP model
};

struct StepBenchResult {
  std::string layout;  // "paired", "paired+packed", "shared", "shared+packed"
  int64_t examples_per_step = 0, rows_per_step = 0;
  StepWork work;              // per step, averaged over the timed steps
  double step_seconds = 0;    // median of the timed steps
  double spread = 0;          // (max - min) / median
  double layout_seconds = 0;  // host time to lay out one step's rows
  double samples_per_second = 0, real_tokens_per_second = 0, row_tokens_per_second = 0;
  double tflops = 0, mfu = 0;
  double memory_gib = 0;  // device memory in use after the steps (0 on the CPU)
  // With breakdown: seconds per step by kind of op, then "host/idle" (the
  // step's wall time not covered by device ops: host work, syncs, launch gaps).
  std::vector<std::pair<std::string, double>> breakdown;
};

// "paired", "paired+packed", "shared" or "shared+packed": how results name o's layout.
std::string layout_label(const StepBenchOptions& o);

StepBenchResult run_step_bench(engine::Engine& engine, const std::vector<layout::TokenizedExample>& examples,
                               const StepBenchOptions& options);

}  // namespace duet::bench
