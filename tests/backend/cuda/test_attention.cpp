// The CUDA forest-masked flash attention against the CPU kernel in double on
// the same bf16 inputs, with flash-attention's criterion: the GPU's error is at
// most twice that of PyTorch-style eager bf16 attention (attention_helpers).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "attention_helpers.hpp"
#include "backend/cuda/attention.hpp"
#include "util/error.hpp"

namespace duet::test {
namespace {

// Sizes that are not multiples of the GPU's tiles (64 keys, 64/128 queries).
int64_t odd_length(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  int64_t n = random_int(rng, lo, hi);
  return n % 64 == 0 ? n + 13 : n;
}

void check_case(const AttnCase& c) {
  SCOPED_TRACE(c.describe());
  const AttnOutputs gpu = run_gpu_attention(c, true);
  expect_flash_criterion(gpu, run_reference_attention(c), run_naive_bf16_attention(c), c.describe());
}

// Head dims 64/128, GQA ratios 1/2/4, with and without a sliding window.
TEST(CudaAttention, MatchesCpuReferenceOnRandomForests) {
  DUET_SEEDED_RNG(rng);
  const std::pair<int64_t, int64_t> heads[] = {{4, 4}, {4, 2}, {8, 2}};
  for (int64_t dim : {64, 128})
    for (auto [hq, hkv] : heads)
      for (bool windowed : {false, true}) {
        ForestShape shape;
        shape.max_segment = 90;  // trees span several tiles; segments cross tile edges
        const int64_t window = windowed ? random_int(rng, 8, 100) : 0;
        check_case(make_attn_case(rng, odd_length(rng, 130, 520), hq, hkv, dim, window, shape));
      }
}

// A longer row with many tiles per tree (the diagonal band and the prompt
// tiles far from it).
TEST(CudaAttention, LongRowWithLargeTrees) {
  DUET_SEEDED_RNG(rng);
  ForestShape shape;
  shape.max_segment = 250;
  shape.pad_fraction = 0.05;
  check_case(make_attn_case(rng, odd_length(rng, 1400, 1700), 8, 2, 128, 0, shape));
}

// Half the row is padding (each pad token sees only itself): whole tiles are
// skipped and many query blocks hold nothing but their own diagonal. Also:
// tile classification changes nothing (the kernels add exact zeros for the
// tiles they would skip), and the backward is bitwise reproducible.
TEST(CudaAttention, SkippedTilesLonelyRowsAndClassification) {
  DUET_SEEDED_RNG(rng);
  ForestShape shape;
  shape.max_segment = 60;
  shape.pad_fraction = 0.6;
  for (int64_t dim : {64, 128}) {
    const AttnCase c = make_attn_case(rng, 64 * 10 + 37, 8, 2, dim, dim == 64 ? 40 : 0, shape);
    SCOPED_TRACE(c.describe());
    const AttnOutputs classified = run_gpu_attention(c, true);
    expect_flash_criterion(classified, run_reference_attention(c), run_naive_bf16_attention(c),
                           c.describe() + " padded");
    const AttnOutputs dense = run_gpu_attention(c, false);
    const AttnOutputs again = run_gpu_attention(c, true);
    const std::pair<const char*, const std::vector<double> AttnOutputs::*> tensors[] = {
        {"o", &AttnOutputs::o},   {"lse", &AttnOutputs::lse}, {"dq", &AttnOutputs::dq},
        {"dk", &AttnOutputs::dk}, {"dv", &AttnOutputs::dv}};
    for (auto [name, member] : tensors) {
      size_t differ = 0, irreproducible = 0;
      for (size_t i = 0; i < (classified.*member).size(); ++i) {
        differ += (classified.*member)[i] != (dense.*member)[i];  // -0 == +0
        irreproducible += std::memcmp(&(classified.*member)[i], &(again.*member)[i], 8) != 0;
      }
      EXPECT_EQ(differ, 0u) << name << ": classified and unclassified runs differ";
      EXPECT_EQ(irreproducible, 0u) << name << ": two identical runs differ";
    }
  }
}

TEST(CudaAttention, RejectsUnsupportedHeadDim) {
  backend::AttentionShape s;
  s.n_tokens = 4;
  s.n_q_heads = 2;
  s.n_kv_heads = 1;
  s.head_dim = 96;
  const int32_t vu[4] = {1, 2, 3, 4};
  s.visible_until = vu;
  EXPECT_THROW(backend::cuda::attention_check_supported(s), Error);
  try {
    backend::cuda::attention_check_supported(s);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 96"), std::string::npos) << e.what();
  }
  backend::cuda::AttentionForward f;
  static_cast<backend::AttentionShape&>(f) = s;
  EXPECT_THROW(backend::cuda::attention_forward(f, nullptr), Error);
  s.head_dim = 128;
  EXPECT_NO_THROW(backend::cuda::attention_check_supported(s));
}

}  // namespace
}  // namespace duet::test
