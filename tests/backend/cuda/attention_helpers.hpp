#pragma once
// The CUDA attention against the CPU reference: random forest cases in bf16,
// the GPU run (fused QKV strides, poisoned outputs), the CPU kernel in double
// on the same bf16 values, and an emulation of PyTorch's eager bf16 attention
// whose error sets the tolerance (flash-attention's criterion).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../helpers.hpp"

namespace duet::test {

uint16_t to_bf16(float x);  // round to nearest even
double from_bf16(uint16_t b);

struct AttnCase {
  int64_t n = 0, hq = 0, hkv = 0, dim = 0, window = 0;
  Forest forest;
  std::vector<uint16_t> q, k, v, d_o;  // bf16, packed [n][heads][dim]
  std::string describe() const;
};

AttnCase make_attn_case(std::mt19937_64& rng, int64_t n, int64_t hq, int64_t hkv, int64_t dim,
                        int64_t window, const ForestShape& shape);

struct AttnOutputs {
  std::vector<double> o, lse, dq, dk, dv;
};

// The GPU forward and backward (plan once; q/k/v and dq/dk/dv as views of
// fused [n][Hq*D + 2*Hkv*D] buffers; every output poisoned with NaN bits).
AttnOutputs run_gpu_attention(const AttnCase& c, bool classify_tiles);
// backend::cpu::attention_forward/backward<double> on the same bf16 values.
AttnOutputs run_reference_attention(const AttnCase& c);
// PyTorch eager bf16: S = bf16(QKᵀ), bf16(S·scale), softmax in fp32 rounded to
// bf16, O = bf16(P V); backward rounding each product to bf16 likewise (no lse).
AttnOutputs run_naive_bf16_attention(const AttnCase& c);

// max|gpu - ref| <= 2 max|naive - ref| + slack for o, dq, dk, dv; |lse| <= 1e-3.
// Prints the errors (one line per tensor) for the record.
void expect_flash_criterion(const AttnOutputs& gpu, const AttnOutputs& ref,
                            const AttnOutputs& naive, const std::string& what);

}  // namespace duet::test
