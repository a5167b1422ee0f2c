// Learning-rate schedules against transformers' lambdas written plainly here.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "trainer/schedule.hpp"

namespace duet::trainer {
namespace {

TEST(Schedule, LinearWithWarmupAsTransformers) {
  // transformers: lr_lambda(s) = s / w for s < w, else max(0, (n - s) / (n - w)); step k uses s = k - 1.
  LrSchedule s{Schedule::linear, 2e-3, 3, 10};
  for (int64_t k = 1; k <= 10; ++k) {
    double step = static_cast<double>(k - 1);
    double expected = step < 3 ? step / 3 : std::max(0.0, (10 - step) / 7);
    EXPECT_DOUBLE_EQ(s.at(k), 2e-3 * expected) << k;
  }
  EXPECT_EQ(s.at(1), 0.0);  // the first warmup step has lr 0, as in transformers
}

TEST(Schedule, CosineAndConstant) {
  LrSchedule c{Schedule::cosine, 1.0, 2, 12};
  for (int64_t k = 3; k <= 12; ++k) {
    double p = (static_cast<double>(k - 1) - 2) / 10;
    EXPECT_NEAR(c.at(k), 0.5 * (1 + std::cos(std::numbers::pi * p)), 1e-15) << k;
  }
  LrSchedule k{Schedule::constant, 0.5, 4, 10};
  EXPECT_EQ(k.at(1), 0.5);  // constant ignores warmup, as transformers' "constant"
  LrSchedule kw{Schedule::constant_with_warmup, 0.5, 4, 10};
  EXPECT_EQ(kw.at(3), 0.5 * 2 / 4);
  EXPECT_EQ(kw.at(9), 0.5);
}

TEST(Schedule, WarmupRatioRoundsUp) {
  TrainOptions o;
  o.learning_rate = 1;
  o.warmup_ratio = 0.1;
  EXPECT_EQ(make_schedule(o, 25).warmup_steps, 3);  // ceil(2.5), as transformers' get_warmup_steps
  o.warmup_steps = 7;
  EXPECT_EQ(make_schedule(o, 25).warmup_steps, 7);
}

}  // namespace
}  // namespace duet::trainer
