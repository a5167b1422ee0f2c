#include "model/weight_source.hpp"

#include <set>

#include "util/error.hpp"

namespace duet::model {

namespace {

std::string others(size_t count, const char* what) {
  return count == 0 ? "" : fmt::format(" ({} more tensors {})", count, what);
}

}  // namespace

WeightSource::WeightSource(ModelConfig config, Checkpoint checkpoint)
    : config_(std::move(config)), checkpoint_(std::move(checkpoint)),
      expected_(expected_tensors(config_)) {
  const std::string where = checkpoint_.path().string();
  std::set<std::string_view> expected_names;
  const ExpectedTensor* first_missing = nullptr;
  size_t missing = 0;
  for (const auto& e : expected_) {
    expected_names.insert(e.name);
    const TensorInfo* t = checkpoint_.find(e.name);
    if (t == nullptr) {
      if (missing++ == 0) first_missing = &e;
      continue;
    }
    if (t->shape != e.shape)
      fail("{}: tensor '{}' has shape {} but the config needs {}; check that config.json belongs to "
           "these weights",
           where, e.name, format_shape(t->shape), format_shape(e.shape));
    if (!is_float_dtype(t->dtype))
      fail("{}: tensor '{}' has dtype {}; duet reads BF16, F16 and F32 weights only", where, e.name,
           dtype_name(t->dtype));
  }
  if (first_missing != nullptr)
    fail("{}: tensor '{}' (shape {}) is missing{}; check that config.json belongs to these weights",
         where, first_missing->name, format_shape(first_missing->shape),
         others(missing - 1, "missing"));

  std::string first_extra;
  size_t extra = 0;
  for (const auto& name : checkpoint_.names()) {
    if (expected_names.contains(name) || is_ignorable_tensor(config_, name)) continue;
    if (extra++ == 0) first_extra = name;
  }
  if (extra > 0)
    fail("{}: tensor '{}' (shape {}) is not used by a {} with this config{}; the config does not "
         "match the weights (e.g. biases present but not enabled)",
         where, first_extra, format_shape(checkpoint_.tensor(first_extra).shape),
         architecture_class(config_.architecture), others(extra - 1, "unused"));
}

WeightSource WeightSource::open(const std::filesystem::path& folder) {
  auto config = load_config(folder / "config.json");
  return WeightSource(std::move(config), Checkpoint::open(folder));
}

}  // namespace duet::model
