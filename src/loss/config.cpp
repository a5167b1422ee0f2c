#include "loss/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace duet::loss {
namespace {

constexpr std::string_view kKeys = "loss_type, loss_weights, beta, label_smoothing, rpo_alpha, simpo_gamma, discopop_tau";

std::string valid_type_names() {
  std::vector<std::string_view> names;
  for (LossType t : all_loss_types()) names.push_back(name(t));
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> items;
  for (size_t start = 0;;) {
    const size_t comma = text.find(',', start);
    items.push_back(trim(text.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

double parse_number(std::string_view key, std::string_view text) {
  const std::string_view t = trim(text);
  double value = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (ec != std::errc() || end != t.data() + t.size() || t.empty() || !std::isfinite(value))
    fail("loss config: {} must be a finite number, got '{}'", key, text);
  return value;
}

LossType parse_type_or_fail(std::string_view text) {
  if (auto t = parse_loss_type(text)) return *t;
  fail("loss config: unknown loss_type '{}'; valid types: {}", text, valid_type_names());
}

void require_finite(std::string_view key, double v) {
  if (!std::isfinite(v)) fail("loss config: {} must be finite, got {}", key, v);
}

}  // namespace

const std::vector<LossType>& all_loss_types() {
  static const std::vector<LossType> types = {
      LossType::sigmoid,   LossType::hinge,     LossType::ipo,          LossType::exo_pair,
      LossType::nca_pair,  LossType::robust,    LossType::bco_pair,     LossType::sppo_hard,
      LossType::aot,       LossType::aot_unpaired, LossType::apo_zero,  LossType::apo_down,
      LossType::discopop,  LossType::sft,       LossType::sigmoid_norm, LossType::simpo,
      LossType::orpo};
  return types;
}

std::string_view name(LossType type) {
  switch (type) {
    case LossType::sigmoid: return "sigmoid";
    case LossType::hinge: return "hinge";
    case LossType::ipo: return "ipo";
    case LossType::exo_pair: return "exo_pair";
    case LossType::nca_pair: return "nca_pair";
    case LossType::robust: return "robust";
    case LossType::bco_pair: return "bco_pair";
    case LossType::sppo_hard: return "sppo_hard";
    case LossType::aot: return "aot";
    case LossType::aot_unpaired: return "aot_unpaired";
    case LossType::apo_zero: return "apo_zero";
    case LossType::apo_down: return "apo_down";
    case LossType::discopop: return "discopop";
    case LossType::sft: return "sft";
    case LossType::sigmoid_norm: return "sigmoid_norm";
    case LossType::simpo: return "simpo";
    case LossType::orpo: return "orpo";
  }
  return "?";
}

std::optional<LossType> parse_loss_type(std::string_view text) {
  for (LossType t : all_loss_types())
    if (name(t) == text) return t;
  return std::nullopt;
}

bool LossConfig::has(LossType type) const {
  return std::find(loss_type.begin(), loss_type.end(), type) != loss_type.end();
}

void validate(const LossConfig& c) {
  if (c.loss_type.empty()) fail("loss config: loss_type is empty; give at least one of: {}", valid_type_names());
  if (!c.loss_weights.empty() && c.loss_weights.size() != c.loss_type.size())
    fail("loss config: loss_weights has {} values but loss_type has {} types; give one weight per type",
         c.loss_weights.size(), c.loss_type.size());
  for (double w : c.loss_weights)
    if (!std::isfinite(w) || w < 0) fail("loss config: loss_weights must be finite and >= 0, got {}", w);
  // simpo and orpo come from other TRL trainers: their rewards and log-prob
  // normalisation differ from DPO's, so they do not mix with other types.
  for (LossType solo : {LossType::simpo, LossType::orpo})
    if (c.has(solo) && c.loss_type.size() != 1)
      fail("loss config: loss_type '{}' cannot be combined with other loss types (use rpo_alpha for an NLL term)",
           name(solo));
  require_finite("beta", c.beta);
  if (c.beta <= 0) fail("loss config: beta must be > 0, got {}", c.beta);
  require_finite("label_smoothing", c.label_smoothing);
  if (c.label_smoothing < 0 || c.label_smoothing > 0.5)
    fail("loss config: label_smoothing must lie in [0, 0.5], got {}", c.label_smoothing);
  if (c.has(LossType::robust) && c.label_smoothing >= 0.5)
    fail("loss config: loss_type 'robust' needs label_smoothing < 0.5 (it divides by 1 - 2*label_smoothing)");
  if (c.has(LossType::exo_pair) && c.label_smoothing == 0)
    fail("loss config: loss_type 'exo_pair' needs label_smoothing > 0 (the EXO paper recommends 1e-3)");
  if (c.rpo_alpha) {
    require_finite("rpo_alpha", *c.rpo_alpha);
    if (*c.rpo_alpha < 0) fail("loss config: rpo_alpha must be >= 0, got {}", *c.rpo_alpha);
  }
  require_finite("simpo_gamma", c.simpo_gamma);
  require_finite("discopop_tau", c.discopop_tau);
  if (c.discopop_tau <= 0) fail("loss config: discopop_tau must be > 0, got {}", c.discopop_tau);
}

LossConfig parse_config(const std::vector<std::pair<std::string, std::string>>& options) {
  LossConfig c;
  std::set<std::string> seen;
  for (const auto& [key, value] : options) {
    if (!seen.insert(key).second) fail("loss config: option '{}' is given twice", key);
    if (key == "loss_type") {
      c.loss_type.clear();
      for (std::string_view item : split_list(value)) c.loss_type.push_back(parse_type_or_fail(item));
    } else if (key == "loss_weights") {
      c.loss_weights.clear();
      for (std::string_view item : split_list(value)) c.loss_weights.push_back(parse_number(key, item));
    } else if (key == "beta") {
      c.beta = parse_number(key, value);
    } else if (key == "label_smoothing") {
      c.label_smoothing = parse_number(key, value);
    } else if (key == "rpo_alpha") {
      if (trim(value) == "none" || trim(value).empty())
        c.rpo_alpha.reset();
      else
        c.rpo_alpha = parse_number(key, value);
    } else if (key == "simpo_gamma") {
      c.simpo_gamma = parse_number(key, value);
    } else if (key == "discopop_tau") {
      c.discopop_tau = parse_number(key, value);
    } else {
      fail("loss config: unknown option '{}'; valid options: {}", key, kKeys);
    }
  }
  validate(c);
  return c;
}

LossConfig config_from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("loss config: expected a JSON object, got {}", j.type_name());
  LossConfig c;
  auto number = [](const std::string& key, const nlohmann::json& v) {
    if (!v.is_number()) fail("loss config: {} must be a number, got {}", key, v.dump());
    return v.get<double>();
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "loss_type") {
      c.loss_type.clear();
      if (v.is_string()) {
        for (std::string_view item : split_list(v.get_ref<const std::string&>()))
          c.loss_type.push_back(parse_type_or_fail(item));
      } else if (v.is_array()) {
        for (const auto& item : v) {
          if (!item.is_string()) fail("loss config: loss_type entries must be strings, got {}", item.dump());
          c.loss_type.push_back(parse_type_or_fail(item.get_ref<const std::string&>()));
        }
      } else {
        fail("loss config: loss_type must be a string or an array of strings, got {}", v.dump());
      }
    } else if (key == "loss_weights") {
      c.loss_weights.clear();
      if (v.is_null()) continue;
      if (!v.is_array()) fail("loss config: loss_weights must be an array of numbers, got {}", v.dump());
      for (const auto& item : v) c.loss_weights.push_back(number(key, item));
    } else if (key == "beta") {
      c.beta = number(key, v);
    } else if (key == "label_smoothing") {
      c.label_smoothing = number(key, v);
    } else if (key == "rpo_alpha") {
      if (v.is_null())
        c.rpo_alpha.reset();
      else
        c.rpo_alpha = number(key, v);
    } else if (key == "simpo_gamma") {
      c.simpo_gamma = number(key, v);
    } else if (key == "discopop_tau") {
      c.discopop_tau = number(key, v);
    } else {
      fail("loss config: unknown option '{}'; valid options: {}", key, kKeys);
    }
  }
  validate(c);
  return c;
}

nlohmann::json to_json(const LossConfig& c) {
  nlohmann::json types = nlohmann::json::array();
  for (LossType t : c.loss_type) types.push_back(std::string(name(t)));
  nlohmann::json j = {{"loss_type", types},
                      {"beta", c.beta},
                      {"label_smoothing", c.label_smoothing},
                      {"simpo_gamma", c.simpo_gamma},
                      {"discopop_tau", c.discopop_tau}};
  j["loss_weights"] = c.loss_weights.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.loss_weights);
  j["rpo_alpha"] = c.rpo_alpha ? nlohmann::json(*c.rpo_alpha) : nlohmann::json(nullptr);
  return j;
}

bool needs_reference(const LossConfig& c) {
  return std::any_of(c.loss_type.begin(), c.loss_type.end(), [](LossType t) {
    return t != LossType::sft && t != LossType::simpo && t != LossType::orpo;
  });
}

bool couples_pairs(const LossConfig& c) {
  return c.has(LossType::aot) || c.has(LossType::aot_unpaired) || c.has(LossType::bco_pair);
}

bool uses_nll(const LossConfig& c) {
  return c.rpo_alpha.has_value() || c.has(LossType::sft) || c.has(LossType::orpo);
}

}  // namespace duet::loss
