// duet estimate-memory through the command line: the JSON object agrees with
// the table's arithmetic (parts + context = total; fits iff total <= GPU),
// the longest row it names fits and 256 tokens more do not, what changes
// with the options goes the right way, and bad input is one line.
#include <algorithm>

#include "cli_helpers.hpp"

namespace duet::cli::testing {
namespace {

json estimate(const TempDir& dir, const std::string& args) {
  const Result r = run_duet(dir, "estimate-memory --json " + args);
  EXPECT_EQ(r.status, 0) << r.err;
  const auto lines = parse_lines(r.out);
  EXPECT_EQ(lines.size(), 1u) << r.out;
  return lines.empty() ? json{} : lines[0];
}

double total_of_parts(const json& j) {
  double sum = j.at("context_gib").get<double>();
  for (const auto& [what, gib] : j.at("parts_gib").items()) sum += gib.get<double>();
  return sum;
}

#ifdef DUET_WITH_CUDA

TEST(CliEstimateMemory, TotalsFitAndTheLongestRow) {
  TempDir dir;
  const std::string at = "--arch llama-3.2-3b --gpu-gib 80 --pack-tokens ";
  const json full = estimate(dir, at + "4096");
  EXPECT_NEAR(total_of_parts(full), full.at("total_gib").get<double>(), 1e-9);
  EXPECT_EQ(full.at("fits"), full.at("total_gib").get<double>() <= 80) << full.dump();
  // The longest row named fits; 256 tokens more would not.
  const int64_t longest = full.at("longest_row_tokens");
  ASSERT_GT(longest, 0) << full.dump();
  EXPECT_TRUE(estimate(dir, at + std::to_string(longest)).at("fits").get<bool>());
  EXPECT_FALSE(estimate(dir, at + std::to_string(longest + 256)).at("fits").get<bool>());
  EXPECT_GT(full.at("longest_row_tokens_with_recompute").get<int64_t>(), 2 * longest);

  // Each option takes away what it says.
  const json no_opt = estimate(dir, at + "4096 --no-optimizer");
  EXPECT_FALSE(no_opt.at("parts_gib").contains("AdamW moments (fp32)"));
  EXPECT_LT(no_opt.at("total_gib").get<double>(), full.at("total_gib").get<double>());
  const json rc = estimate(dir, at + "4096 --gradient-checkpointing");
  EXPECT_LT(rc.at("total_gib").get<double>(), full.at("total_gib").get<double>());

  // 8B: full fine-tuning with AdamW fits no single H200 (docs/distributed.md),
  // LoRA fits an H100.
  const json big = estimate(dir, "--arch llama-3.1-8b --gpu-gib 141 --pack-tokens 4096");
  EXPECT_FALSE(big.at("fits").get<bool>());
  EXPECT_EQ(big.at("longest_row_tokens_with_recompute"), 0);
  const Result said = run_duet(dir, "estimate-memory --arch llama-3.1-8b --gpu-gib 141");
  EXPECT_NE(said.out.find("too large for one GPU"), std::string::npos) << said.out;
  const json lora = estimate(dir, "--arch llama-3.1-8b --gpu-gib 80 --pack-tokens 4096 --use-peft --lora-r 16");
  EXPECT_EQ(lora.at("lora_r"), 16);
  EXPECT_FALSE(lora.at("parts_gib").contains("reference model (bf16)"));
  EXPECT_TRUE(lora.at("fits").get<bool>()) << lora.dump();

  // ZeRO-1 over four H200s: 8B full fine-tuning with AdamW and a reference
  // fits (docs/distributed.md's table), each GPU holding a quarter of the
  // fp32 master and moments.
  const json four = estimate(dir, "--arch llama-3.1-8b --gpu-gib 141 --gpus 4 --zero-stage 1");
  EXPECT_TRUE(four.at("fits").get<bool>()) << four.dump();
  EXPECT_EQ(four.at("gpus"), 4);
  EXPECT_TRUE(four.at("parts_gib").contains("master and moments (fp32), a 1/4 shard")) << four.dump();
  // ZeRO-2 over two: the gradients sharded too, two layers and the embedding and LM head staged;
  // one GPU cannot hold the state at any stage.
  const json two = estimate(dir, "--arch llama-3.1-8b --gpu-gib 141 --gpus 2 --zero-stage 2");
  EXPECT_TRUE(two.at("fits").get<bool>()) << two.dump();
  EXPECT_TRUE(two.at("parts_gib").contains("gradients (fp32), a 1/2 shard")) << two.dump();
  EXPECT_FALSE(two.at("parts_gib").contains("gradients (fp32)")) << two.dump();
  EXPECT_LT(two.at("total_gib").get<double>(),
            estimate(dir, "--arch llama-3.1-8b --gpu-gib 141 --gpus 2 --zero-stage 1").at("total_gib").get<double>() - 9);
  EXPECT_FALSE(estimate(dir, "--arch llama-3.1-8b --gpu-gib 141 --zero-stage 2").at("fits").get<bool>());
  // ZeRO-3 over eight: the bf16 weights and the reference sharded too (7/8 of 2 x 15 GiB saved).
  const json eight = estimate(dir, "--arch llama-3.1-8b --gpu-gib 141 --gpus 8 --zero-stage 3");
  EXPECT_TRUE(eight.at("parts_gib").contains("weights (bf16), a 1/8 shard")) << eight.dump();
  EXPECT_FALSE(eight.at("parts_gib").contains("weights (bf16)")) << eight.dump();
  EXPECT_LT(eight.at("total_gib").get<double>(),
            estimate(dir, "--arch llama-3.1-8b --gpu-gib 141 --gpus 8 --zero-stage 2").at("total_gib").get<double>() - 20);

  // A config.json gives what its preset gives.
  write_file(dir / "config.json", tiny_config("Qwen2ForCausalLM", 300).dump());
  const json tiny = estimate(dir, "--config " + (dir / "config.json").string() + " --context-gib 0");
  EXPECT_NEAR(total_of_parts(tiny), tiny.at("total_gib").get<double>(), 1e-12);
  EXPECT_LT(tiny.at("total_gib").get<double>(), 1.0);
}

TEST(CliEstimateMemory, DataGivesTheLongestRowItsStepsCanBring) {
  // Rows as duet train lays the file out: unpacked, one example (prompt and
  // both responses, shared); packed, the batch's largest examples together
  // up to --pack-tokens.
  TempDir dir;
  std::mt19937_64 rng(fresh_seed());
  write_file(dir / "config.json", tiny_config("LlamaForCausalLM", 300).dump());
  const auto examples = random_examples(rng, 40, 300, 30, 20);
  write_file(dir / "data.jsonl", to_jsonl(examples));
  std::vector<int64_t> units, targets;
  for (const auto& e : examples) {
    const auto r = static_cast<int64_t>(e.responses[0].size() + e.responses[1].size());
    units.push_back(static_cast<int64_t>(e.prompt.size()) + r), targets.push_back(r);
  }
  const std::string base = "--config " + (dir / "config.json").string() + " --data " + (dir / "data.jsonl").string();
  const json unpacked = estimate(dir, base);
  EXPECT_EQ(unpacked.at("row_tokens"), *std::max_element(units.begin(), units.end()));
  EXPECT_EQ(unpacked.at("row_targets"), *std::max_element(targets.begin(), targets.end()));
  std::sort(units.rbegin(), units.rend());
  const json packed = estimate(dir, base + " --pack-tokens 120 --batch-size 3");
  EXPECT_EQ(packed.at("row_tokens"), std::min<int64_t>(120, units[0] + units[1] + units[2]));
  EXPECT_LE(packed.at("row_targets").get<int64_t>(), packed.at("row_tokens").get<int64_t>());
  // Examples longer than a row: the data layer's report, as duet train gives it.
  const Result too_long = run_duet(dir, "estimate-memory " + base + " --pack-tokens 10");
  EXPECT_NE(too_long.status, 0);
  EXPECT_NE(too_long.err.find("but --pack-tokens is 10"), std::string::npos) << too_long.err;
}

TEST(CliEstimateMemory, DataParallelOptionsTheEngineLacksAreOneLine) {
  TempDir dir;
  expect_one_line_error(run_duet(dir, "estimate-memory --arch llama-3.1-8b --gpus 0"), "--gpus 0");
  expect_one_line_error(run_duet(dir, "estimate-memory --arch llama-3.1-8b --gpus 8 --zero-stage 3 --use-peft"), "LoRA");
  expect_one_line_error(run_duet(dir, "estimate-memory --arch llama-3.1-8b --zero-stage 1 --use-peft"), "LoRA");
}

#endif

TEST(CliEstimateMemory, BadInputIsOneLine) {
  TempDir dir;
  expect_one_line_error(run_duet(dir, "estimate-memory"), "exactly one of --arch");
  expect_one_line_error(run_duet(dir, "estimate-memory --arch llama-3.1-8b --pack-tokens 0"), "--pack-tokens 0");
  expect_one_line_error(run_duet(dir, "estimate-memory --arch llama-3.1-8b --gpu-gib -1"), "--gpu-gib");
  expect_one_line_error(run_duet(dir, "estimate-memory --arch no-such-model"), "no-such-model");
  expect_one_line_error(run_duet(dir, "estimate-memory --arch llama-3.1-8b --use-peft --lora-r 0"), "r");
}

}  // namespace
}  // namespace duet::cli::testing
