// `duet train` end to end through the binary: a --config file with flags
// overriding it, SIGINT writing a checkpoint that resumes, and one-line errors
// for inputs that do not fit together.
#include <csignal>
#include <thread>

#include "cli_helpers.hpp"
#include "engine/engine.hpp"

namespace duet::cli::testing {
namespace {

TEST(CliTrain, ConfigFileWithFlagOverrides) {
  TrainSetup s(24);
  json file = json::object();
  file["model"] = s.model;
  file["data"] = s.data;
  file["batch_size"] = 4;
  file["max_steps"] = 9;
  file["learning_rate"] = 1e-3;
  file["loss_type"] = "ipo";
  write_file(s.dir / "train.json", file.dump());
  const fs::path out = s.dir / "out";
  Result r = run_duet(s.dir, "train --config " + (s.dir / "train.json").string() + " --out " + out.string() +
                                 " --max-steps 3 --no-progress");
  ASSERT_EQ(r.status, 0) << r.err;
  auto m = metrics(out);
  ASSERT_EQ(m.size(), 3u);  // the flag won over the file's 9
  for (const char* key : {"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                          "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "grad_norm", "learning_rate", "epoch",
                          "tokens_per_second", "examples_per_second"})
    EXPECT_TRUE(m.back().contains(key)) << key;
  // ipo from the file: at step 1 (policy = reference) its loss is (0 - 1/(2 beta))^2 = 25 for beta 0.1.
  EXPECT_NEAR(m.front()["loss"].get<double>(), 25.0, 1e-9);
  EXPECT_TRUE(fs::exists(out / "checkpoint-3" / "trainer_state.json"));
}

TEST(CliTrain, SigintWritesACheckpointThatResumes) {
  TrainSetup s(64);
  const fs::path out = s.dir / "out";
  const std::string cmd = std::string(DUET_BINARY) + " train --model " + s.model + " --data " + s.data + " --out " +
                          out.string() + " --batch-size 2 --max-steps 1000 --no-progress 2> " +
                          (s.dir / "err").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the first logged step, then interrupt.
  for (int i = 0; i < 600 && metrics_so_far(out).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(metrics_so_far(out).empty()) << read_file(s.dir / "err");
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130) << read_file(s.dir / "err");
  const int64_t done = metrics(out).back()["step"];
  ASSERT_LT(done, 1000);
  const fs::path ckpt = out / ("checkpoint-" + std::to_string(done));
  ASSERT_TRUE(fs::exists(ckpt / "optimizer.safetensors")) << read_file(s.dir / "err");
  EXPECT_NE(read_file(s.dir / "err").find("--resume-from-checkpoint"), std::string::npos);
  // Resume for two more steps: the step count continues.
  Result r = run_duet(s.dir, "train --model " + s.model + " --data " + s.data + " --out " + out.string() +
                                 " --batch-size 2 --max-steps " + std::to_string(done + 2) +
                                 " --no-progress --allow-option-changes max_steps --resume-from-checkpoint " + ckpt.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(metrics(out).back()["step"].get<int64_t>(), done + 2);
}

TEST(CliTrain, DuetRefCacheGivesTheSameLosses) {
  TrainSetup s(24);
  const std::string base = "train --model " + s.model + " --data " + s.data +
                           " --batch-size 4 --max-steps 4 --learning-rate 1e-3 --no-progress --out ";
  Result ref = run_duet(s.dir, "ref --device cpu --pack-tokens 128 --model " + s.model + " --data " + s.data +
                                   " --out " + (s.dir / "ref.jsonl").string());
  ASSERT_EQ(ref.status, 0) << ref.err;
  Result with_model = run_duet(s.dir, base + (s.dir / "a").string());
  ASSERT_EQ(with_model.status, 0) << with_model.err;
  Result with_cache = run_duet(s.dir, base + (s.dir / "b").string() + " --ref-cache " + (s.dir / "ref.jsonl").string());
  ASSERT_EQ(with_cache.status, 0) << with_cache.err;
  auto a = metrics(s.dir / "a"), b = metrics(s.dir / "b");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i)  // the cache was scored packed: equal up to fp32 summation order
    EXPECT_NEAR(b[i]["loss"].get<double>(), a[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
}

TEST(CliTrain, GradientCheckpointingIsRecordedAndChangesNoNumber) {
  TrainSetup s(16);
  const std::string base = "train --model " + s.model + " --data " + s.data +
                           " --batch-size 4 --max-steps 2 --learning-rate 1e-3 --no-progress --out ";
  ASSERT_EQ(run_duet(s.dir, base + (s.dir / "a").string()).status, 0);
  Result r = run_duet(s.dir, base + (s.dir / "b").string() + " --gradient-checkpointing");
  ASSERT_EQ(r.status, 0) << r.err;
  auto a = metrics(s.dir / "a"), b = metrics(s.dir / "b");
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(b[i]["loss"], a[i]["loss"]) << "step " << i + 1;
  const json state = json::parse(read_file(s.dir / "b" / "checkpoint-2" / "trainer_state.json"));
  EXPECT_EQ(state["options"]["gradient_checkpointing"], true) << state.dump();
}

// --device defaults to auto: the CUDA engine where it runs, else the CPU
// engine; the checkpoint records the engine that ran. --fp32 asks for the
// CPU engine, --bf16 for the CUDA one (one line where it cannot run). On a
// GPU machine the CPU suites run with the GPU hidden (CUDA_VISIBLE_DEVICES=,
// scripts/gpu/logprobs_check.sh), so both sides see the same GPUs.
TEST(CliTrain, DeviceAutoPicksTheEngineThatRunsHereAndRecordsIt) {
  TrainSetup s(8);
  const std::string base = "train --model " + s.model + " --data " + s.data +
                           " --batch-size 4 --max-steps 1 --save-steps 1 --no-progress --out ";
  auto recorded = [&](const std::string& out) {
    const json state = json::parse(read_file(s.dir / out / "checkpoint-1" / "trainer_state.json"));
    return state["options"]["device"].get<std::string>();
  };
  const Result fp32 = run_duet(s.dir, base + (s.dir / "fp32").string() + " --fp32");
  ASSERT_EQ(fp32.status, 0) << fp32.err;
  EXPECT_EQ(recorded("fp32"), "cpu");
  const Result plain = run_duet(s.dir, base + (s.dir / "auto").string());
  if (engine::cuda_engine_runs_here()) {
    // The CUDA engine was chosen: it refuses this tiny model's head dim in one line.
    expect_one_line_error(plain, "head_dim");
  } else {
    ASSERT_EQ(plain.status, 0) << plain.err;
    EXPECT_EQ(recorded("auto"), "cpu");
    expect_one_line_error(run_duet(s.dir, base + (s.dir / "bf16").string() + " --bf16"), "--bf16 needs the cuda engine");
    const Result scored = run_duet(s.dir, "logprobs --model " + s.model + " --data " + s.data);
    ASSERT_EQ(scored.status, 0) << scored.err;
    EXPECT_EQ(parse_lines(scored.out).size(), 8u);
  }
}

TEST(CliTrain, InputsThatDoNotFitGiveOneLine) {
  TrainSetup s(8);
  const std::string base = "train --model " + s.model + " --data " + s.data + " --out " + (s.dir / "o").string();
  expect_one_line_error(run_duet(s.dir, base + " --device cuda"), "--device cuda");
  expect_one_line_error(run_duet(s.dir, base + " --loss-type nope"), "nope");
  expect_one_line_error(run_duet(s.dir, base + " --batch-size 0"), "--batch-size");
  expect_one_line_error(run_duet(s.dir, base + " --allow-option-changes max_steps,nope"), "'nope'");
  expect_one_line_error(run_duet(s.dir, base + " --resume-from-checkpoint " + s.model), "trainer_state.json");
  // Token ids beyond the model's vocabulary (300).
  write_file(s.dir / "big.jsonl", R"({"prompt_input_ids":[1,2],"chosen_input_ids":[3],"rejected_input_ids":[999]})" "\n");
  expect_one_line_error(run_duet(s.dir, "train --model " + s.model + " --data " + (s.dir / "big.jsonl").string() +
                                            " --out " + (s.dir / "o2").string()),
                        "999");
}

TEST(CliTrain, OnErrorSkipDropsBadExamplesInsteadOfFailing) {
  TrainSetup s(16);
  // A line missing its rejected response, in the middle of good data.
  std::string data = read_file(s.data);
  const size_t cut = data.find('\n', data.size() / 2) + 1;
  data.insert(cut, R"({"prompt_input_ids":[1,2],"chosen_input_ids":[3]})" "\n");
  write_file(s.dir / "mixed.jsonl", data);
  const std::string base = "train --model " + s.model + " --data " + (s.dir / "mixed.jsonl").string() +
                           " --batch-size 4 --max-steps 2 --no-progress --out ";
  Result failed = run_duet(s.dir, base + (s.dir / "a").string());
  EXPECT_NE(failed.status, 0);
  EXPECT_NE(failed.err.find("rejected"), std::string::npos) << failed.err;
  Result skipped = run_duet(s.dir, base + (s.dir / "b").string() + " --on-error skip");
  ASSERT_EQ(skipped.status, 0) << skipped.err;
  EXPECT_EQ(metrics(s.dir / "b").size(), 2u);
}

}  // namespace
}  // namespace duet::cli::testing
