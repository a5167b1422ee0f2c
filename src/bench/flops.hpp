#pragma once
// The FLOP model behind `duet bench`'s TFLOP/s and MFU (docs/bench.md): the
// useful work of a step, whatever layout carries it.
//   matrices   6·N per real token for the policy (forward + backward), 2·N for
//              the reference forward; N = the decoder's matrix weights
//              (q, k, v, o, gate, up, down over all layers)
//   LM head    2·d·V per target for each forward, 4·d·V for the policy backward
//   attention  4·D·Hq per visible (query, key) pair and layer for a forward,
//              2.5× that for the backward (5 products instead of 2)
//   LoRA       the frozen base's backward computes input gradients only (2·N
//              per token, 2·d·V per target); the adapter's A = r·in and B =
//              out·r weights (n_a in all) cost 2·n_a per policy token forward
//              and 4·n_a backward
// Padding tokens and masked pairs do not count: they are not useful work.
#include <cstdint>
#include <span>

#include "layout/row.hpp"
#include "model/config.hpp"

namespace duet::bench {

int64_t matrix_parameters(const model::ModelConfig& c);

// Visible (query, key) pairs of a row (the window, if any, applied), padding excluded.
int64_t visible_pairs(const layout::Row& row, int64_t window);

struct StepWork {
  int64_t real_tokens = 0, row_tokens = 0, targets = 0, visible_pairs = 0;
};

// What is trained: every weight, or a LoRA adapter of n_adapter weights on a frozen base.
struct Trained {
  bool frozen_base = false;
  int64_t adapter_parameters = 0;
};

// FLOPs of a step of `work` for config c; with_reference adds the reference
// forward, with_backward the policy backward.
double step_flops(const model::ModelConfig& c, const StepWork& work, bool with_reference, bool with_backward,
                  Trained trained = {});

}  // namespace duet::bench
