// duet bench through the command line on the CPU engine (the CUDA engine is
// the bench's real target; its figures come from the GPU machine): a tiny
// config.json on a dataset profile, full fine-tune and LoRA, JSON lines with
// the same work per step and the LoRA step's FLOP model without the base's
// weight gradients; bad LoRA input is one line.
#include <cstdlib>

#include "cli_helpers.hpp"

namespace duet::cli::testing {
namespace {

TEST(CliBench, FullAndLoraStepsOnTheCpuEngine) {
  TempDir dir;
  const fs::path config = dir / "config.json";
  write_file(config, tiny_config("LlamaForCausalLM", 300).dump());
  const fs::path json_file = dir / "bench.jsonl";
  const std::string common = "bench --config " + config.string() +
                             " --device cpu --profile hh-rlhf --layout paired,shared+packed --pack-tokens 2048"
                             " --examples 32 --examples-per-step 8 --steps 1 --warmup 0 --json " +
                             json_file.string();
  const Result full = run_duet(dir, common);
  ASSERT_EQ(full.status, 0) << full.err;
  const Result lora = run_duet(dir, common + " --use-peft --lora-r 4 --lora-target-modules all-linear");
  ASSERT_EQ(lora.status, 0) << lora.err;
  const auto lines = parse_lines(read_file(json_file));
  ASSERT_EQ(lines.size(), 4u);
  for (size_t i = 0; i < 2; ++i) {
    const json& f = lines[i];
    const json& l = lines[i + 2];
    EXPECT_EQ(f.at("lora_r"), 0);
    EXPECT_EQ(l.at("lora_r"), 4);
    EXPECT_EQ(f.at("layout"), l.at("layout"));
    // The same examples laid out the same way ...
    EXPECT_EQ(f.at("real_tokens_per_step"), l.at("real_tokens_per_step"));
    EXPECT_EQ(f.at("targets_per_step"), l.at("targets_per_step"));
    // ... and less work for the frozen base (no weight gradients): FLOPs per step.
    const double f_flops = f.at("tflops").get<double>() * f.at("step_seconds").get<double>();
    const double l_flops = l.at("tflops").get<double>() * l.at("step_seconds").get<double>();
    EXPECT_GT(l_flops, 0.0);
    EXPECT_LT(l_flops, f_flops);
  }
  expect_one_line_error(run_duet(dir, common + " --use-peft --lora-r 0"), "--lora-r must be a positive integer");
  expect_one_line_error(run_duet(dir, common + " --use-peft --lora-target-modules qkv"), "'qkv' is not a linear layer");
}

// No GPU (hidden here, so the test means the same on the GPU machine): one line.
TEST(CliBench, NoGpuIsOneLine) {
  TempDir dir;
  const char* saved = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::string keep = saved ? saved : "";
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  const Result r = run_duet(dir, "bench --arch llama-3.2-1b --profile hh-rlhf --examples 16 --steps 1 --warmup 0");
  if (saved) setenv("CUDA_VISIBLE_DEVICES", keep.c_str(), 1);
  else unsetenv("CUDA_VISIBLE_DEVICES");
  expect_one_line_error(r, "--device cuda: ");
}

}  // namespace
}  // namespace duet::cli::testing
