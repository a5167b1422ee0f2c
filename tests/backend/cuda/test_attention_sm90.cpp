// The Hopper kernels (attention_forward_sm90.cu, attention_backward_sm90.cu:
// wgmma + mbarrier pipelines) against the CPU kernel in double, with the
// criterion and random forests of test_attention.cpp, and against the mma.sync
// kernels. The tests select them the way a run does (DUET_ATTENTION_SM90 and
// DUET_ATTENTION_BWD_SM90 = 1 or 0, set here and restored); skipped where the
// GPU is not compute 9.0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "attention_helpers.hpp"
#include "backend/cuda/attention_backward_sm90.hpp"
#include "backend/cuda/attention_forward_sm90.hpp"

namespace duet::test {
namespace {

// An environment variable set (to 1 or 0, or a value) for one scope, restored after.
class Sm90Env {
 public:
  Sm90Env(const char* name, bool on) : Sm90Env(name, on ? "1" : "0") {}
  Sm90Env(const char* name, const char* value) : name_(name) {
    if (const char* v = std::getenv(name)) saved_ = v;
    setenv(name, value, 1);
  }
  ~Sm90Env() {
    if (saved_) setenv(name_, saved_->c_str(), 1);
    else unsetenv(name_);
  }
  Sm90Env(const Sm90Env&) = delete;
  Sm90Env& operator=(const Sm90Env&) = delete;

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

// Forward and backward each on the Hopper (true) or the mma.sync kernels.
AttnOutputs run_with(const AttnCase& c, bool fwd_sm90, bool bwd_sm90, bool classify) {
  Sm90Env fwd("DUET_ATTENTION_SM90", fwd_sm90), bwd("DUET_ATTENTION_BWD_SM90", bwd_sm90);
  EXPECT_EQ(backend::cuda::attention_forward_uses_sm90(c.dim), fwd_sm90);
  EXPECT_EQ(backend::cuda::attention_backward_uses_sm90(c.dim), bwd_sm90);
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

// The Hopper forward and backward together meet the criterion; the Hopper
// forward's o and lse are as close to the mma.sync forward's as both are to
// the reference, and so are the Hopper backward's dq, dk, dv to the mma.sync
// backward's on the same o and lse (the mma.sync forward's).
void check_case(const AttnCase& c) {
  SCOPED_TRACE(c.describe());
  const AttnOutputs ref = run_reference_attention(c), naive = run_naive_bf16_attention(c);
  const AttnOutputs hopper = run_with(c, true, true, true);
  expect_flash_criterion(hopper, ref, naive, c.describe() + " sm90");
  const AttnOutputs mma = run_with(c, false, false, true);
  const AttnOutputs bwd = run_with(c, false, true, true);
  const std::pair<const char*, const std::vector<double> AttnOutputs::*> tensors[] = {
      {"o", &AttnOutputs::o}, {"dq", &AttnOutputs::dq}, {"dk", &AttnOutputs::dk}, {"dv", &AttnOutputs::dv}};
  for (auto [name, member] : tensors) {
    const AttnOutputs& sm90 = member == &AttnOutputs::o ? hopper : bwd;
    const double d = max_diff(sm90.*member, mma.*member), e_naive = max_diff(naive.*member, ref.*member);
    std::printf("[sm90 vs mma.sync] %s %-2s %.3e (naive_bf16 %.3e) ratio %.2f\n", c.describe().c_str(),
                name, d, e_naive, d / e_naive);
    EXPECT_LE(d, 2 * e_naive) << name << ": sm90 vs mma.sync";
  }
  const double d_lse = max_diff(hopper.lse, mma.lse);
  std::printf("[sm90 vs mma.sync] %s lse %.3e\n", c.describe().c_str(), d_lse);
  EXPECT_LE(d_lse, 1e-3) << "lse: sm90 vs mma.sync";
  EXPECT_EQ(std::memcmp(bwd.o.data(), mma.o.data(), mma.o.size() * sizeof(double)), 0)
      << "the same forward twice";
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

// The forward's persistent grid capped at a few CTAs, so that each CTA runs
// many work items one after the other (the other tests' rows have fewer
// items than the GPU has multiprocessors): random forests at both head dims
// (one with a window) and a causal row, then runs on 3 and 7 CTAs bitwise equal.
TEST_F(CudaAttentionSm90, PersistentGridWithFewCtas) {
  DUET_SEEDED_RNG(rng);
  Sm90Env ctas("DUET_ATTENTION_SM90_CTAS", "3");
  ForestShape shape;
  shape.max_segment = 120;
  shape.pad_fraction = 0.2;
  for (int64_t dim : {64, 128}) {
    check_case(make_attn_case(rng, odd_length(rng, 600, 900), 8, 2, dim, dim == 64 ? 50 : 0, shape));
    AttnCase c = make_attn_case(rng, 1000, 4, 1, dim, 0, ForestShape{});
    for (int64_t i = 0; i < 1000; ++i) {
      c.forest.visible_until[i] = 1000;
      c.forest.position[i] = static_cast<int32_t>(i);
    }
    c.forest.used = 1000;
    check_case(c);
    const AttnOutputs first = run_with(c, true, false, true);
    Sm90Env other("DUET_ATTENTION_SM90_CTAS", "7");  // another schedule, the same results
    const AttnOutputs again = run_with(c, true, false, true);
    EXPECT_EQ(std::memcmp(first.o.data(), again.o.data(), first.o.size() * sizeof(double)), 0) << "o";
    EXPECT_EQ(std::memcmp(first.lse.data(), again.lse.data(), first.lse.size() * sizeof(double)), 0) << "lse";
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
    const AttnOutputs classified = run_with(c, true, true, true);
    const AttnOutputs dense = run_with(c, true, true, false);
    const AttnOutputs again = run_with(c, true, true, true);
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
