#pragma once
// Learning-rate schedules as transformers' get_scheduler defines them: the
// optimizer step k (1-based) uses lr * factor(k - 1).
#include <cstdint>

#include "trainer/options.hpp"

namespace duet::trainer {

struct LrSchedule {
  Schedule type = Schedule::linear;
  double peak = 0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // The learning rate of optimizer step `step` (1-based).
  double at(int64_t step) const;
};

// warmup_steps if given, else ceil(warmup_ratio * total_steps), as HF.
LrSchedule make_schedule(const TrainOptions& options, int64_t total_steps);

}  // namespace duet::trainer
