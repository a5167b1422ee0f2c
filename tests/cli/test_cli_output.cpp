// duet train and its output folder, through the binary: an --out that is or
// holds an input is refused, an earlier run is not mixed into (unless
// --overwrite-output-dir or a resume), a second run on the same folder fails
// at once, SIGTERM/SIGUSR1 checkpoint like SIGINT, a SIGKILLed run resumes
// without duplicated metrics, and file-system failures are one clear line
// that leaves nothing half-written.
#include <sys/resource.h>

#include <csignal>
#include <functional>
#include <set>
#include <thread>

#include "cli_helpers.hpp"

namespace duet::cli::testing {
namespace {

// A resume with another --max-steps than the interrupted run's.
const std::string kAllowMaxSteps = " --allow-option-changes max_steps";

std::vector<int64_t> steps_in(const std::vector<json>& records) {
  std::vector<int64_t> s;
  for (const auto& m : records)
    if (m.contains("loss")) s.push_back(m["step"]);
  return s;
}

// The logged steps of a finished run: every line must be complete.
std::vector<int64_t> steps(const fs::path& out) { return steps_in(metrics(out)); }

std::set<std::string> names(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::directory_iterator(dir)) s.insert(e.path().filename().string());
  return s;
}

// A duet train running in the background, its stderr in `err`.
struct Background {
  pid_t pid = -1;
  fs::path err;
  Background(const TrainSetup& run, const std::string& args, const std::function<void()>& in_child = {}) {
    err = run.dir / ("bg_err_" + std::to_string(fresh_seed() % 100000));
    const std::string cmd = "exec " + std::string(DUET_BINARY) + " " + args + " 2> " + err.string();
    pid = fork();
    if (pid == 0) {
      if (in_child) in_child();
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  // Waits until metrics.jsonl of `out` has logged step `step`.
  bool reach(const fs::path& out, int64_t step) const {
    for (int i = 0; i < 1200; ++i) {
      const auto s = steps_in(metrics_so_far(out));
      if (!s.empty() && s.back() >= step) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  int finish(int signal) {
    if (signal) kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

TEST(CliOutput, OutThatIsOrHoldsAnInputIsRefused) {
  TrainSetup r(8);
  const std::string weights = read_file(fs::path(r.model) / "model.safetensors");
  const std::string base = "train --model " + r.model + " --data " + r.data + " --max-steps 1 --out ";
  expect_one_line_error(run_duet(r.dir, base + r.model), "is --model");
  expect_one_line_error(run_duet(r.dir, base + r.model + "/run"), "lies inside --model");
  expect_one_line_error(run_duet(r.dir, base + r.dir.path().string()), "contains --model");
  expect_one_line_error(run_duet(r.dir, base + r.data), "is --data");
  expect_one_line_error(run_duet(r.dir, base + r.model + "/../model/"), "is --model");  // another spelling
  expect_one_line_error(run_duet(r.dir, base + (r.dir / "o").string() + " --ref-model " + (r.dir / "o").string()),
                        "is --ref-model");
  EXPECT_EQ(read_file(fs::path(r.model) / "model.safetensors"), weights);
  EXPECT_EQ(names(r.model), (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_FALSE(fs::exists(r.dir / "o"));
}

TEST(CliOutput, AnEarlierRunIsReplacedOnlyWhenAskedTo) {
  TrainSetup r(16);
  const fs::path out = r.dir / "out";
  ASSERT_EQ(run_duet(r.dir, r.train(out) + " --max-steps 3 --save-steps 1").status, 0);
  const std::string first = read_file(out / "metrics.jsonl");
  expect_one_line_error(run_duet(r.dir, r.train(out) + " --max-steps 2"), "holds an earlier run");
  EXPECT_EQ(read_file(out / "metrics.jsonl"), first);
  Result again = run_duet(r.dir, r.train(out) + " --max-steps 2 --overwrite-output-dir");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(steps(out), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(fs::exists(out / "checkpoint-3"));  // the earlier run's checkpoints are gone
  EXPECT_FALSE(fs::exists(out / "checkpoint-1"));
  EXPECT_TRUE(fs::exists(out / "checkpoint-2" / "optimizer.safetensors"));
  // A folder with other files (no run) is fine, and they are kept.
  fs::create_directories(r.dir / "notes");
  write_file(r.dir / "notes" / "README", "mine");
  ASSERT_EQ(run_duet(r.dir, r.train(r.dir / "notes") + " --max-steps 1").status, 0);
  EXPECT_EQ(read_file(r.dir / "notes" / "README"), "mine");
}

TEST(CliOutput, SaveTotalLimitKeepsTheNewestCheckpoints) {
  TrainSetup r(16);
  const fs::path out = r.dir / "out";
  Result run = run_duet(r.dir, r.train(out) + " --max-steps 4 --save-steps 1 --save-total-limit 2");
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(names(out), (std::set<std::string>{".duet-train.lock", "checkpoint-3", "checkpoint-4", "config.json",
                                                "metrics.jsonl", "model.safetensors", "train_results.json"}));
}

TEST(CliOutput, SecondRunOnTheSameFolderFailsAtOnceAndSigtermCheckpoints) {
  TrainSetup r(64);
  const fs::path out = r.dir / "out";
  Background first(r, r.train(out) + " --max-steps 100000");
  ASSERT_TRUE(first.reach(out, 1)) << read_file(first.err);
  Result second = run_duet(r.dir, r.train(out) + " --max-steps 2 --overwrite-output-dir");
  expect_one_line_error(second, "another duet train (pid " + std::to_string(first.pid) + ")");
  EXPECT_EQ(first.finish(SIGTERM), 128 + SIGTERM) << read_file(first.err);
  const int64_t done = steps(out).back();
  EXPECT_TRUE(fs::exists(out / ("checkpoint-" + std::to_string(done)) / "optimizer.safetensors"))
      << read_file(first.err);
  EXPECT_NE(read_file(first.err).find("--resume-from-checkpoint"), std::string::npos);
  // The lock went with the process: a resume may write here now.
  Result resumed = run_duet(r.dir, r.train(out) + " --max-steps " + std::to_string(done + 1) + kAllowMaxSteps +
                                       " --resume-from-checkpoint " +
                                       (out / ("checkpoint-" + std::to_string(done))).string());
  ASSERT_EQ(resumed.status, 0) << resumed.err;
}

TEST(CliOutput, Sigusr1CheckpointsLikeSigint) {
  TrainSetup r(64);
  const fs::path out = r.dir / "out";
  Background run(r, r.train(out) + " --max-steps 100000");
  ASSERT_TRUE(run.reach(out, 1)) << read_file(run.err);
  EXPECT_EQ(run.finish(SIGUSR1), 128 + SIGUSR1) << read_file(run.err);
  const int64_t done = steps(out).back();
  EXPECT_TRUE(fs::exists(out / ("checkpoint-" + std::to_string(done)) / "trainer_state.json"));
}

TEST(CliOutput, ResumeAfterSigkillLogsEveryStepOnce) {
  TrainSetup r(64);
  const fs::path out = r.dir / "out";
  const std::string args = r.train(out) + " --save-steps 2";
  Background run(r, args + " --max-steps 100000");
  ASSERT_TRUE(run.reach(out, 3)) << read_file(run.err);
  run.finish(SIGKILL);
  auto ckpts = names(out);
  int64_t last = 0;
  for (const auto& n : ckpts)
    if (n.starts_with("checkpoint-") && n.find('.') == std::string::npos) last = std::max<int64_t>(last, std::stoll(n.substr(11)));
  ASSERT_GE(last, 2);
  const int64_t logged = steps(out).back();  // usually past the checkpoint: steps logged, then lost
  ASSERT_GE(logged, last);
  Result resumed = run_duet(r.dir, args + kAllowMaxSteps + " --max-steps " + std::to_string(logged + 2) +
                                        " --resume-from-checkpoint " +
                                        (out / ("checkpoint-" + std::to_string(last))).string());
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  std::vector<int64_t> expected;
  for (int64_t s = 1; s <= logged + 2; ++s) expected.push_back(s);
  EXPECT_EQ(steps(out), expected);
  for (const auto& n : names(out)) EXPECT_EQ(n.find(".tmp"), std::string::npos) << n;
}

TEST(CliOutput, ResumeFromAnEarlierCheckpointCutsTheMetricsBack) {
  // The state a kill leaves, made deterministically: metrics logged past the
  // checkpoint that is resumed.
  TrainSetup r(16);
  const fs::path out = r.dir / "out";
  ASSERT_EQ(run_duet(r.dir, r.train(out) + " --max-steps 5 --save-steps 2").status, 0);
  Result resumed = run_duet(r.dir, r.train(out) + " --max-steps 5 --save-steps 2 --resume-from-checkpoint " +
                                       (out / "checkpoint-2").string());
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(steps(out), (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST(CliOutput, FileSystemFailuresAreOneLine) {
  TrainSetup r(8);
  const std::string base = "train --model " + r.model + " --data " + r.data + " --max-steps 1 --out ";
  write_file(r.dir / "a_file", "x");
  expect_one_line_error(run_duet(r.dir, base + (r.dir / "a_file").string()), "is a file");
  expect_one_line_error(run_duet(r.dir, base + (r.dir / "a_file" / "sub").string()), "a_file");
  expect_one_line_error(run_duet(r.dir, base + "/proc/duet-out"), "/proc/duet-out");
}

TEST(CliOutput, FullDiskLeavesNoHalfCheckpoint) {
  TrainSetup r(8);
  const fs::path out = r.dir / "out";
  // Files may not grow past 256 KiB: the checkpoint's weights (about 170 KB)
  // fit, its optimizer state (three times that) does not.
  Background run(r, r.train(out) + " --max-steps 1", [] {
    std::signal(SIGXFSZ, SIG_IGN);  // write() fails with EFBIG instead of killing
    rlimit limit{256 * 1024, 256 * 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
  });
  const int status = run.finish(0);
  const std::string err = read_file(run.err);
  EXPECT_EQ(status, 1) << err;
  const std::string last_line = err.substr(err.rfind('\n', err.size() - 2) + 1);
  EXPECT_EQ(last_line.rfind("duet: error: ", 0), 0u) << err;
  EXPECT_NE(err.find("checkpoint-1"), std::string::npos) << err;
  EXPECT_EQ(err.find("internal error"), std::string::npos) << err;
  for (const auto& n : names(out)) {
    EXPECT_EQ(n.find("tmp"), std::string::npos) << n;
    EXPECT_EQ(n.find("checkpoint"), std::string::npos) << n;
    EXPECT_NE(n, "config.json");
  }
}

}  // namespace
}  // namespace duet::cli::testing
