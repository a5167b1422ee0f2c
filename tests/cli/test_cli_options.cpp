// duet train's options through the binary: numbers parsed strictly, --help
// with every type, default and accepted value, TRL's names (kebab and snake
// case, JSON and YAML files, the per-device batch x accumulation), TRL options
// duet lacks named with the reason, unknown options listed all at once.
#include "cli_helpers.hpp"
#include "data/chat_template.hpp"

namespace duet::cli::testing {
namespace {

TEST(CliOptions, NumbersAreParsedStrictly) {
  TrainSetup s(8);
  const std::string base = s.train(s.dir / "o") + " --max-steps 1";
  const std::pair<const char*, const char*> bad[] = {
      {" --batch-size 4abc", "--batch-size: '4abc' is not an integer"},
      {" --batch_size 2.5", "'2.5' is not an integer"},
      {" --learning-rate 1e-3x", "--learning-rate: '1e-3x' is not a number"},
      {" --max-grad-norm nan", "--max-grad-norm: 'nan' is not a finite number"},
      {" --learning-rate inf", "--learning-rate: 'inf' is not a finite number"},
      {" --threads -3", "--threads must be in [0, 4096]"},
      {" --warmup-ratio 1.5", "--warmup-ratio"},
      {" --adam-beta2 1", "--adam-beta2"},
      {" --max-steps 0", "--max-steps must be positive, or -1"},
      {" --loss-weights 1,x --loss-type sigmoid,sft", "--loss-weights: 'x' is not a number"},
  };
  for (const auto& [args, message] : bad) {
    SCOPED_TRACE(args);
    expect_one_line_error(run_duet(s.dir, base + args), message);
  }
  EXPECT_FALSE(fs::exists(s.dir / "o" / "metrics.jsonl"));
  // A config file is held to the same types.
  write_file(s.dir / "c.json", R"({"batch_size": 2.5})");
  expect_one_line_error(run_duet(s.dir, base + " --config " + (s.dir / "c.json").string()),
                        "option 'batch_size' must be an integer, got 2.5");
}

TEST(CliOptions, HelpShowsTypesDefaultsAndEveryAcceptedValue) {
  TempDir dir;
  Result r = run_duet(dir, "train --help");
  ASSERT_EQ(r.status, 0);
  for (const char* text : {"--batch-size,--batch_size INT", "[default: 8]", "--learning-rate,--learning_rate FLOAT",
                           "[default: 1e-06]", "--model,--model-name-or-path,--model_name_or_path PATH",
                           "--out,--output-dir,--output_dir PATH", "(one of: constant, constant_with_warmup, linear, cosine)",
                           "--max-steps,--max_steps INT", "[default: -1]", "aot_unpaired", "orpo"})
    EXPECT_NE(r.out.find(text), std::string::npos) << text;
  for (auto name : data::builtin_template_names()) EXPECT_NE(r.out.find(std::string(name)), std::string::npos) << name;
}

TEST(CliOptions, TrlNamesInKebabAndSnakeCaseAndInYaml) {
  TrainSetup s(16);
  const fs::path out = s.dir / "out";
  write_file(s.dir / "train.yaml",
             "# as a TRL user writes it\n"
             "model_name_or_path: " + s.model + "\n"
             "output_dir: '" + out.string() + "'\n"
             "per_device_train_batch_size: 2\n"
             "gradient_accumulation_steps: 3\n"
             "learning_rate: 1.0e-3\n"
             "loss_type: [sigmoid, sft]\n"
             "loss_weights: [1.0, 0.5]\n"
             "disable_tqdm: true\n");
  Result r = run_duet(s.dir, "train --config " + (s.dir / "train.yaml").string() + " --data " + s.data +
                                 " --max_steps 2 --lr-scheduler-type constant");
  ASSERT_EQ(r.status, 0) << r.err;
  auto m = metrics(out);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0]["learning_rate"], 1e-3);
  const json state = json::parse(read_file(out / "checkpoint-2" / "trainer_state.json"));
  EXPECT_EQ(state["options"]["batch_size"], 6);  // 2 per device x 3 accumulation steps x 1 rank
  EXPECT_EQ(state["options"]["loss_type"], json::array({"sigmoid", "sft"}));
  // YAML with a mistake points at its line.
  write_file(s.dir / "bad.yaml", "max_steps: 2\nbeta: [1,\n");
  expect_one_line_error(run_duet(s.dir, "train --config " + (s.dir / "bad.yaml").string()), "bad.yaml:");
}

TEST(CliOptions, TrlOptionsDuetLacksAndUnknownOptionsAreAllNamed) {
  TrainSetup s(8);
  const std::string base = s.train(s.dir / "o") + " --max-steps 1";
  expect_one_line_error(run_duet(s.dir, base + " --fp16"), "TRL's option is not implemented in duet: fp16 (");
  expect_one_line_error(run_duet(s.dir, base + " --use_peft --push-to-hub"), "push_to_hub (");
  Result two = run_duet(s.dir, base + " --bogus 3 --max-stepz 4");
  expect_one_line_error(two, "unknown options --bogus, --max-stepz");
  write_file(s.dir / "c.json", R"({"nope": 1, "max_steps": 2, "also_nope": true})");
  expect_one_line_error(run_duet(s.dir, base + " --config " + (s.dir / "c.json").string()),
                        "unknown options also_nope, nope");
  expect_one_line_error(run_duet(s.dir, base + " --device cpu --bf16"), "--bf16: the cpu engine computes in fp32");
  EXPECT_FALSE(fs::exists(s.dir / "o"));
}

TEST(CliOptions, MaxStepsMinusOneTrainsTheEpochs) {
  TrainSetup s(10);
  Result r = run_duet(s.dir, s.train(s.dir / "o") + " --max-steps -1 --num-train-epochs 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(metrics(s.dir / "o").size(), 10u);  // 2 epochs of 10 examples in batches of 2
}

TEST(CliOptions, MaxLengthAloneWorksAndTrainSaysWhatTruncationDid) {
  TrainSetup s(12);  // prompts of 1..20 tokens, responses of 1..12
  Result r = run_duet(s.dir, s.train(s.dir / "o") + " --max-steps 1 --max-length 16");
  ASSERT_EQ(r.status, 0) << r.err;
  // The prompt limit follows: min(512, 16 / 2) = 8.
  EXPECT_NE(r.err.find("data: 12 examples read; "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(max_length 16, max_prompt_length 8)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("; 0 prompts"), std::string::npos) << r.err;  // some of 12 random prompts exceed 8

  // Truncation that leaves nothing: every pair shares its first response token.
  std::string same_start;
  for (int i = 0; i < 4; ++i)
    same_start += R"({"prompt_input_ids":[5,6,7],"chosen_input_ids":[9,1],"rejected_input_ids":[9,2]})" "\n";
  write_file(s.dir / "same.jsonl", same_start);
  Result none = run_duet(s.dir, "train --model " + s.model + " --data " + (s.dir / "same.jsonl").string() +
                                    " --out " + (s.dir / "n").string() + " --max-length 3 --max-prompt-length 2");
  expect_one_line_error(none, "no example left to train on: 4 examples read; 4 prompts and 4 examples' responses "
                              "truncated; 4 dropped (4 identical_after_truncation)");
}

TEST(CliOptions, PrecomputeRefLogProbsGivesTheSameLosses) {
  TrainSetup s(16);
  const std::string base = s.train(s.dir / "a").substr(0, s.train(s.dir / "a").find(" --out")) +
                           " --batch-size 4 --max-steps 3 --learning-rate 1e-3 --no-progress --out ";
  ASSERT_EQ(run_duet(s.dir, base + (s.dir / "a").string()).status, 0);
  Result r = run_duet(s.dir, base + (s.dir / "b").string() + " --precompute-ref-log-probs");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(s.dir / "b" / "ref_log_probs.jsonl"));
  auto a = metrics(s.dir / "a"), b = metrics(s.dir / "b");
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i)  // scored packed: equal up to fp32 summation order
    EXPECT_NEAR(b[i]["loss"].get<double>(), a[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
}

}  // namespace
}  // namespace duet::cli::testing
