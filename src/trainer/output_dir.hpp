#pragma once
// The output folder of `duet train`, guarded: it never is, contains or lies
// inside an input folder (model, reference, tokenizer, the resumed
// checkpoint) or an input file; a folder that already holds a run is refused
// unless the user says to overwrite it or resumes; a lock file keeps a second
// run out while the first one writes; what a killed run left half-written is
// cleaned on start. Every failure is one line naming the path.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace duet::trainer {

struct TrainOptions;

class OutputDir {
 public:
  // Checks the folder against the options, creates it, takes the lock and
  // removes stale temporary files. With options.overwrite_output_dir the
  // earlier run's files (metrics, checkpoints, final model) are removed.
  explicit OutputDir(const TrainOptions& options);
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Resume: drops the records of metrics.jsonl after `step` (those of steps
  // the resumed run will log again), and a partial last line.
  void cut_metrics_after(int64_t step) const;

  // Removes the oldest checkpoint-N folders so that at most `limit` remain
  // (limit <= 0: keep all). Returns the removed folders.
  std::vector<std::filesystem::path> prune_checkpoints(int64_t limit) const;

  // The checkpoint-N folders in the folder, by increasing N.
  std::vector<std::pair<int64_t, std::filesystem::path>> checkpoints() const;

  static constexpr const char* kLockFile = ".duet-train.lock";

 private:
  std::filesystem::path path_;
  int lock_fd_ = -1;
};

}  // namespace duet::trainer
