#include "trainer/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace duet::trainer {

double LrSchedule::at(int64_t step) const {
  const double s = static_cast<double>(step - 1);  // HF's scheduler counts completed steps
  const double w = static_cast<double>(warmup_steps), n = static_cast<double>(total_steps);
  if (type == Schedule::constant) return peak;
  if (s < w) return peak * s / std::max(1.0, w);
  switch (type) {
    case Schedule::constant_with_warmup:
      return peak;
    case Schedule::linear:
      return peak * std::max(0.0, (n - s) / std::max(1.0, n - w));
    case Schedule::cosine: {
      const double progress = (s - w) / std::max(1.0, n - w);
      return peak * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
    }
    default:
      return peak;
  }
}

LrSchedule make_schedule(const TrainOptions& o, int64_t total_steps) {
  LrSchedule s;
  s.type = o.lr_scheduler_type;
  s.peak = o.learning_rate;
  s.total_steps = total_steps;
  s.warmup_steps = o.warmup_steps > 0 ? o.warmup_steps
                                      : static_cast<int64_t>(std::ceil(o.warmup_ratio * static_cast<double>(total_steps)));
  return s;
}

}  // namespace duet::trainer
