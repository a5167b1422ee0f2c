// A checkpoint's trainer_state.json -> the resume state (step, data position,
// loss state, options, fingerprints, optimizer layout).
#include <string_view>

#include "fuzz_target.hpp"
#include "trainer/checkpoint.hpp"

DUET_FUZZ_TARGET(trainer_state, data, size) {
  try {
    (void)duet::trainer::parse_training_state(std::string_view(reinterpret_cast<const char*>(data), size),
                                              "fuzz/trainer_state.json");
  } catch (const duet::Error&) {
  }
  return 0;
}
