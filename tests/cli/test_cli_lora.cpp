// LoRA through the command line: duet train --use-peft writes a PEFT adapter
// (and --merge-adapter a merged model), duet logprobs --adapter scores it as
// the merged model does, duet merge writes the same merged weights, and bad
// LoRA input is one line on stderr.
#include <cmath>

#include "cli_helpers.hpp"

namespace duet::cli::testing {
namespace {

std::vector<json> logprobs(const TempDir& dir, const std::string& model, const std::string& data,
                           const std::string& extra = "") {
  const Result r = run_duet(dir, "logprobs --model " + model + " --data " + data + " --layout shared --pack-tokens 256" + extra);
  EXPECT_EQ(r.status, 0) << r.err;
  return parse_lines(r.out);
}

TEST(CliLora, AdapterScoresAsTheMergedModels) {
  TrainSetup setup(12);
  const fs::path out = setup.dir / "run";
  const Result train = run_duet(setup.dir, setup.train(out) +
                                               " --use-peft --lora-r 4 --lora-alpha 16 --lora-target-modules "
                                               "q_proj,o_proj,up_proj,down_proj --max-steps 3 --learning-rate 0.02 "
                                               "--merge-adapter");
  ASSERT_EQ(train.status, 0) << train.err;
  ASSERT_TRUE(fs::exists(out / "adapter_model.safetensors"));
  ASSERT_TRUE(fs::exists(out / "merged" / "model.safetensors"));
  const fs::path merged_again = setup.dir / "merged_again";
  const Result merge = run_duet(setup.dir, "merge --model " + setup.model + " --adapter " + out.string() + " --out " +
                                               merged_again.string());
  ASSERT_EQ(merge.status, 0) << merge.err;
  EXPECT_EQ(read_file(merged_again / "model.safetensors"), read_file(out / "merged" / "model.safetensors"));
  const std::string again = "merge --model " + setup.model + " --adapter " + out.string() + " --out " + merged_again.string();
  expect_one_line_error(run_duet(setup.dir, again), "is not empty");
  EXPECT_EQ(run_duet(setup.dir, again + " --force").status, 0);

  const auto adapted = logprobs(setup.dir, setup.model, setup.data, " --adapter " + out.string());
  const auto merged = logprobs(setup.dir, (out / "merged").string(), setup.data);
  const auto base = logprobs(setup.dir, setup.model, setup.data);
  ASSERT_EQ(adapted.size(), 12u);
  ASSERT_EQ(merged.size(), adapted.size());
  double moved = 0;
  for (size_t i = 0; i < adapted.size(); ++i)
    for (const char* key : {"chosen_logp", "rejected_logp"}) {
      const double a = adapted[i][key], m = merged[i][key], b = base[i][key];
      EXPECT_NEAR(m, a, 1e-5 * std::abs(a)) << "example " << i << " " << key;
      moved = std::max(moved, std::abs(a - b));
    }
  EXPECT_GT(moved, 1e-4) << "three steps must have changed the adapter's scores";
}

TEST(CliLora, ConfigFileTakesTrlsLoraKeys) {
  TrainSetup setup(4);
  const fs::path out = setup.dir / "out", config = setup.dir / "lora.yaml";
  write_file(config, "use_peft: true\nlora_r: 2\nlora_alpha: 5\nlora_dropout: 0.0\nuse_rslora: true\n"
                     "lora_target_modules: [v_proj, gate_proj]\nmax_steps: 1\n");
  const Result r = run_duet(setup.dir, setup.train(out) + " --config " + config.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const json adapter = json::parse(read_file(out / "adapter_config.json"));
  EXPECT_EQ(adapter["r"], 2);
  EXPECT_EQ(adapter["lora_alpha"], 5);
  EXPECT_EQ(adapter["use_rslora"], true);
  EXPECT_EQ(adapter["target_modules"], json({"v_proj", "gate_proj"}));
  // 2 layers x (v: 2 x (32 + 16) + gate: 2 x (32 + 64)) = 576 trainable parameters.
  EXPECT_NE(r.err.find("trainable params 576 ||"), std::string::npos) << r.err;
}

TEST(CliLora, BadLoraInputIsOneLine) {
  TrainSetup setup(4);
  const std::string out = (setup.dir / "out").string();
  expect_one_line_error(run_duet(setup.dir, setup.train(out) + " --lora-r 8"), "--lora-r configures a LoRA adapter");
  expect_one_line_error(run_duet(setup.dir, setup.train(out) + " --use-peft --lora-target-modules q_proj,qkv"),
                        "'qkv' is not a linear layer");
  expect_one_line_error(run_duet(setup.dir, setup.train(out) + " --use-peft --lora-dropout 1.5"),
                        "--lora-dropout must be in [0, 1)");
  // No GPU here (or, on a GPU, LoRA on CUDA not yet enabled): one line either way.
  expect_one_line_error(run_duet(setup.dir, setup.train(out) + " --use-peft --device cuda"), "--device cuda");
  expect_one_line_error(run_duet(setup.dir, setup.train(out) + " --use-peft --adapter " + setup.model),
                        "no adapter_config.json here");
  expect_one_line_error(
      run_duet(setup.dir, "merge --model " + setup.model + " --adapter " + setup.model + " --out " + out),
      "not a PEFT adapter folder");
  expect_one_line_error(run_duet(setup.dir, "logprobs --model " + setup.model + " --data " + setup.data +
                                                " --adapter " + (setup.dir / "missing").string()),
                        "not a folder");
}

}  // namespace
}  // namespace duet::cli::testing
