// Parsing and validation of loss configurations.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "loss/config.hpp"
#include "util/error.hpp"

namespace duet::loss {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

// The message of the Error thrown by parse_config(options), or "" if none.
std::string error_of(const Options& options) {
  try {
    parse_config(options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LossConfig, ParsesTrlNamedOptions) {
  const LossConfig c = parse_config({{"loss_type", "sigmoid, bco_pair,sft"},
                                     {"loss_weights", "0.8,0.2,1"},
                                     {"beta", "0.25"},
                                     {"label_smoothing", "0.1"},
                                     {"rpo_alpha", "0.5"},
                                     {"discopop_tau", "0.1"}});
  EXPECT_EQ(c.loss_type, (std::vector{LossType::sigmoid, LossType::bco_pair, LossType::sft}));
  EXPECT_EQ(c.loss_weights, (std::vector{0.8, 0.2, 1.0}));
  EXPECT_EQ(c.beta, 0.25);
  EXPECT_EQ(c.label_smoothing, 0.1);
  ASSERT_TRUE(c.rpo_alpha.has_value());
  EXPECT_EQ(*c.rpo_alpha, 0.5);
  EXPECT_EQ(c.discopop_tau, 0.1);
  EXPECT_TRUE(couples_pairs(c));
  EXPECT_TRUE(needs_reference(c));
  EXPECT_TRUE(uses_nll(c));
}

TEST(LossConfig, DefaultsAreTrls) {
  const LossConfig c = parse_config({});
  EXPECT_EQ(c.loss_type, std::vector{LossType::sigmoid});
  EXPECT_EQ(c.beta, 0.1);
  EXPECT_EQ(c.label_smoothing, 0.0);
  EXPECT_FALSE(c.rpo_alpha.has_value());
  EXPECT_EQ(c.simpo_gamma, 0.5);
  EXPECT_EQ(c.discopop_tau, 0.05);
  EXPECT_FALSE(couples_pairs(c));
  EXPECT_FALSE(uses_nll(c));
}

TEST(LossConfig, UnknownTypeListsEveryValidType) {
  const std::string message = error_of({{"loss_type", "sigmoid,dpo"}});
  ASSERT_NE(message, "");
  EXPECT_NE(message.find("'dpo'"), std::string::npos) << message;
  for (LossType t : all_loss_types()) EXPECT_NE(message.find(std::string(name(t))), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(LossConfig, NamesRoundTrip) {
  for (LossType t : all_loss_types()) EXPECT_EQ(parse_loss_type(name(t)), t);
  EXPECT_EQ(all_loss_types().size(), 17u);
  EXPECT_FALSE(parse_loss_type("Sigmoid").has_value());
}

TEST(LossConfig, BadConfigsFail) {
  const std::vector<Options> bad = {
      {{"loss_type", "sigmoid,ipo"}, {"loss_weights", "1"}},  // length mismatch
      {{"loss_weights", "1,2"}},                               // mismatch with the default type
      {{"beta", "-0.1"}},
      {{"beta", "0"}},
      {{"beta", "nan"}},
      {{"beta", "0.1x"}},
      {{"beta", ""}},
      {{"label_smoothing", "-0.1"}},
      {{"label_smoothing", "0.6"}},
      {{"loss_type", "robust"}, {"label_smoothing", "0.5"}},
      {{"loss_type", "exo_pair"}},  // needs label_smoothing > 0
      {{"loss_type", "simpo,sft"}},
      {{"loss_type", "sigmoid,orpo"}},
      {{"loss_type", ""}},
      {{"loss_type", "sigmoid,"}},
      {{"loss_weights", "-1"}},
      {{"rpo_alpha", "-1"}},
      {{"discopop_tau", "0"}},
      {{"simpo_gamma", "inf"}},
      {{"temperature", "1"}},           // unknown key
      {{"beta", "0.1"}, {"beta", "0.2"}},  // given twice
  };
  for (const auto& options : bad) {
    std::string text;
    for (const auto& [k, v] : options) text += k + "=" + v + " ";
    SCOPED_TRACE(text);
    EXPECT_THROW(parse_config(options), Error);
  }
  LossConfig c;
  c.loss_type.clear();
  EXPECT_THROW(validate(c), Error);
}

TEST(LossConfig, ExoPairAndRobustAcceptValidSmoothing) {
  EXPECT_NO_THROW(parse_config({{"loss_type", "exo_pair"}, {"label_smoothing", "1e-3"}}));
  EXPECT_NO_THROW(parse_config({{"loss_type", "robust"}, {"label_smoothing", "0.49"}}));
  EXPECT_NO_THROW(parse_config({{"loss_type", "simpo"}, {"rpo_alpha", "1"}}));
  EXPECT_NO_THROW(parse_config({{"rpo_alpha", "none"}}));
}

TEST(LossConfig, JsonRoundTripAndErrors) {
  LossConfig c = parse_config({{"loss_type", "apo_zero,sft"}, {"loss_weights", "1,0.05"}, {"rpo_alpha", "0.3"}});
  const LossConfig back = config_from_json(nlohmann::json::parse(to_json(c).dump()));
  EXPECT_EQ(back.loss_type, c.loss_type);
  EXPECT_EQ(back.loss_weights, c.loss_weights);
  EXPECT_EQ(back.rpo_alpha, c.rpo_alpha);
  EXPECT_EQ(back.beta, c.beta);
  const LossConfig s = config_from_json(nlohmann::json::parse(R"({"loss_type": "simpo", "beta": 2.0})"));
  EXPECT_EQ(s.loss_type, std::vector{LossType::simpo});
  EXPECT_FALSE(needs_reference(s));
  for (const char* text : {R"({"loss_type": ["sigmoid", 3]})", R"({"beta": "0.1"})", R"({"loss_weights": 1})",
                           R"({"nope": 1})", R"([1])", R"({"loss_type": ["hinge"], "loss_weights": [1, 2]})"}) {
    SCOPED_TRACE(text);
    EXPECT_THROW(config_from_json(nlohmann::json::parse(text)), Error);
  }
}

TEST(LossConfig, ReferenceAndCouplingFlags) {
  auto one = [](LossType t) {
    LossConfig c;
    c.loss_type = {t};
    c.label_smoothing = t == LossType::exo_pair ? 1e-3 : 0.0;
    return c;
  };
  for (LossType t : all_loss_types()) {
    SCOPED_TRACE(std::string(name(t)));
    const bool ref_free = t == LossType::sft || t == LossType::simpo || t == LossType::orpo;
    const bool coupled = t == LossType::aot || t == LossType::aot_unpaired || t == LossType::bco_pair;
    EXPECT_EQ(needs_reference(one(t)), !ref_free);
    EXPECT_EQ(couples_pairs(one(t)), coupled);
  }
}

}  // namespace
}  // namespace duet::loss
