// The Hopper forward (attention_forward_sm90.cu, wgmma + mbarrier pipeline)
// against the CPU kernel in double, with the criterion and random forests of
// test_attention.cpp, and against the mma.sync forward. The tests select it
// the way a run does (DUET_ATTENTION_SM90=1 or 0, set here and restored), so the
// backward also runs on its o and lse; skipped where the GPU is not compute 9.0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "attention_helpers.hpp"
#include "backend/cuda/attention_forward_sm90.hpp"

namespace duet::test {
namespace {

// DUET_ATTENTION_SM90 set to 1 or 0 for one scope, restored after.
class Sm90Env {
 public:
  explicit Sm90Env(bool on) {
    if (const char* v = std::getenv(kName)) saved_ = v;
    setenv(kName, on ? "1" : "0", 1);
  }
  ~Sm90Env() {
    if (saved_) setenv(kName, saved_->c_str(), 1);
    else unsetenv(kName);
  }
  Sm90Env(const Sm90Env&) = delete;
  Sm90Env& operator=(const Sm90Env&) = delete;

 private:
  static constexpr const char* kName = "DUET_ATTENTION_SM90";
  std::optional<std::string> saved_;
};

AttnOutputs run_with(const AttnCase& c, bool sm90, bool classify) {
  Sm90Env env(sm90);
  EXPECT_EQ(backend::cuda::attention_forward_uses_sm90(c.dim), sm90);
  return run_gpu_attention(c, classify);
}

int64_t odd_length(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  int64_t n = random_int(rng, lo, hi);
  return n % 64 == 0 ? n + 13 : n;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (std::isnan(d)) return NAN;
    m = std::max(m, d);
  }
  return m;
}

// The Hopper forward (and the backward on its o, lse) meets the criterion; its
// o and lse are as close to the mma.sync forward's as both are to the reference.
void check_case(const AttnCase& c) {
  SCOPED_TRACE(c.describe());
  const AttnOutputs ref = run_reference_attention(c), naive = run_naive_bf16_attention(c);
  const AttnOutputs hopper = run_with(c, true, true);
  expect_flash_criterion(hopper, ref, naive, c.describe() + " sm90");
  const AttnOutputs mma = run_with(c, false, true);
  const double d_o = max_diff(hopper.o, mma.o), d_lse = max_diff(hopper.lse, mma.lse);
  const double e_naive = max_diff(naive.o, ref.o);
  std::printf("[sm90 vs mma.sync] %s o %.3e (naive_bf16 %.3e) lse %.3e\n", c.describe().c_str(), d_o,
              e_naive, d_lse);
  EXPECT_LE(d_o, 2 * e_naive) << "o: sm90 vs mma.sync";
  EXPECT_LE(d_lse, 1e-3) << "lse: sm90 vs mma.sync";
}

class CudaAttentionSm90 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!backend::cuda::attention_sm90_supported()) GTEST_SKIP() << "not a compute 9.0 GPU";
  }
};

TEST_F(CudaAttentionSm90, MatchesCpuReferenceOnRandomForests) {
  DUET_SEEDED_RNG(rng);
  const std::pair<int64_t, int64_t> heads[] = {{4, 4}, {4, 2}, {8, 2}};
  for (int64_t dim : {64, 128})
    for (auto [hq, hkv] : heads)
      for (bool windowed : {false, true}) {
        ForestShape shape;
        shape.max_segment = 90;
        const int64_t window = windowed ? random_int(rng, 8, 100) : 0;
        check_case(make_attn_case(rng, odd_length(rng, 130, 520), hq, hkv, dim, window, shape));
      }
}

TEST_F(CudaAttentionSm90, LongRowWithLargeTrees) {
  DUET_SEEDED_RNG(rng);
  ForestShape shape;
  shape.max_segment = 250;
  shape.pad_fraction = 0.05;
  for (int64_t dim : {64, 128})
    check_case(make_attn_case(rng, odd_length(rng, 1400, 1700), 8, 2, dim, 0, shape));
}

// One causal sequence over the whole row: mostly Full tiles (no mask), the
// diagonal ones Partial; a row length that is a multiple of 128 and one that is not.
TEST_F(CudaAttentionSm90, CausalRow) {
  DUET_SEEDED_RNG(rng);
  for (int64_t n : {int64_t{768}, int64_t{1000}})
    for (int64_t dim : {64, 128}) {
      AttnCase c = make_attn_case(rng, n, 4, 2, dim, 0, ForestShape{});
      for (int64_t i = 0; i < n; ++i) {
        c.forest.visible_until[i] = static_cast<int32_t>(n);
        c.forest.position[i] = static_cast<int32_t>(i);
      }
      c.forest.used = n;
      check_case(c);
    }
}

// Padding-heavy rows (whole tiles skipped, lonely query blocks); classified
// and unclassified runs are equal, two runs bitwise identical.
TEST_F(CudaAttentionSm90, SkippedTilesLonelyRowsAndClassification) {
  DUET_SEEDED_RNG(rng);
  ForestShape shape;
  shape.max_segment = 60;
  shape.pad_fraction = 0.6;
  for (int64_t dim : {64, 128}) {
    const AttnCase c = make_attn_case(rng, 64 * 10 + 37, 8, 2, dim, dim == 64 ? 40 : 0, shape);
    SCOPED_TRACE(c.describe());
    check_case(c);
    const AttnOutputs classified = run_with(c, true, true);
    const AttnOutputs dense = run_with(c, true, false);
    const AttnOutputs again = run_with(c, true, true);
    const std::pair<const char*, const std::vector<double> AttnOutputs::*> tensors[] = {
        {"o", &AttnOutputs::o},   {"lse", &AttnOutputs::lse}, {"dq", &AttnOutputs::dq},
        {"dk", &AttnOutputs::dk}, {"dv", &AttnOutputs::dv}};
    for (auto [name, member] : tensors) {
      size_t differ = 0, irreproducible = 0;
      for (size_t i = 0; i < (classified.*member).size(); ++i) {
        differ += (classified.*member)[i] != (dense.*member)[i];
        irreproducible += std::memcmp(&(classified.*member)[i], &(again.*member)[i], 8) != 0;
      }
      EXPECT_EQ(differ, 0u) << name << ": classified and unclassified runs differ";
      EXPECT_EQ(irreproducible, 0u) << name << ": two identical runs differ";
    }
  }
}

}  // namespace
}  // namespace duet::test
