#include "trainer/output_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "trainer/options.hpp"
#include "util/error.hpp"

namespace duet::trainer {

namespace fs = std::filesystem;

namespace {

// Absolute, with symlinks of the existing part resolved, so that two
// spellings of one folder compare equal.
fs::path resolved(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p).lexically_normal() : r;
}

// a == b or a lies inside b.
bool within(const fs::path& a, const fs::path& b) {
  auto ai = a.begin(), bi = b.begin();
  for (; bi != b.end(); ++ai, ++bi) {
    if (bi->empty()) continue;  // a trailing separator
    if (ai == a.end() || *ai != *bi) return false;
  }
  return true;
}

// N of "checkpoint-N" (also "checkpoint-N.tmp" and ".old" with `suffix`), or -1.
int64_t checkpoint_number(const std::string& name, std::string_view suffix = "") {
  constexpr std::string_view prefix = "checkpoint-";
  if (!name.starts_with(prefix) || !name.ends_with(suffix)) return -1;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size() - suffix.size();
  int64_t n = -1;
  auto [end, err] = std::from_chars(first, last, n);
  return err == std::errc() && end == last && first != last ? n : -1;
}

// What duet train writes into OUT: an earlier run is any of these.
bool is_run_file(const std::string& name) {
  return name == "metrics.jsonl" || name == "config.json" || name == "train_results.json" || name == "model.safetensors" ||
         name == "model.safetensors.index.json" || name == "runs" || name == "adapter_config.json" ||
         name == "adapter_model.safetensors" || name == "merged" || checkpoint_number(name) >= 0;
}

// Left behind by a killed run: checkpoint-N.tmp / .old folders, temporary
// files of the atomic writers (.model.safetensors.tmp-XXXXXX, NAME.tmp).
bool is_stale(const std::string& name) {
  if (checkpoint_number(name, ".tmp") >= 0 || checkpoint_number(name, ".old") >= 0 ||
      name.starts_with(".model.safetensors.tmp-") || name.starts_with(".adapter_model.safetensors.tmp-"))
    return true;
  for (const char* file : {"config.json", "adapter_config.json", "metrics.jsonl", "ref_log_probs.jsonl", "train_results.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "generation_config.json"})
    if (name == std::string(file) + ".tmp") return true;
  return false;
}

void remove_or_fail(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) fail("{}: cannot remove ({})", p.string(), ec.message());
}

struct Protected {
  fs::path path;
  const char* what;
  bool folder;  // a folder: OUT may not contain it either
};

void check_not_an_input(const fs::path& out, const TrainOptions& o) {
  std::vector<Protected> inputs = {{o.model, "--model", true},
                                   {o.ref_model, "--ref-model", true},
                                   {o.tokenizer, "--tokenizer", true},
                                   {o.resume_from_checkpoint, "--resume-from-checkpoint", true},
                                   {o.adapter, "--adapter", true},
                                   {o.data, "--data", false},
                                   {o.eval_data, "--eval-data", false},
                                   {o.ref_cache, "--ref-cache", false}};
  for (const auto& in : inputs) {
    if (in.path.empty()) continue;
    std::error_code ec;
    // A tokenizer may be given as its tokenizer.json: protect its folder.
    const bool file_in_folder = in.folder && fs::is_regular_file(in.path, ec);
    const fs::path p = resolved(in.path);
    const fs::path folder = file_in_folder ? p.parent_path() : p;
    if (within(out, folder) && (in.folder || out == folder))
      fail("--out {}: {} {}; writing there would overwrite the input: choose another output folder", out.string(),
           out == folder ? "is" : "lies inside", fmt::format("{} {}", in.what, in.path.string()));
    if (in.folder && within(folder, out) && !(in.what == std::string("--resume-from-checkpoint")))
      fail("--out {}: contains {} {}; the run's files would mix with the input: choose another output folder",
           out.string(), in.what, in.path.string());
  }
}

}  // namespace

OutputDir::OutputDir(const TrainOptions& o) : path_(o.out) {
  const fs::path out = resolved(o.out);
  check_not_an_input(out, o);
  std::error_code ec;
  const auto status = fs::status(o.out, ec);
  if (fs::exists(status) && !fs::is_directory(status))
    fail("--out {}: is a file, not a folder; give the folder to write the run into", o.out.string());
  fs::create_directories(o.out, ec);
  if (ec) fail("--out {}: cannot create the folder ({})", o.out.string(), ec.message());

  const fs::path lock = o.out / kLockFile;
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    fail("--out {}: cannot write into the folder ({}); check its permissions", o.out.string(), std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::string holder;
    std::ifstream(lock) >> holder;
    ::close(std::exchange(lock_fd_, -1));
    fail("--out {}: another duet train{} is writing to this folder; wait for it to end or choose another folder",
         o.out.string(), holder.empty() ? "" : " (pid " + holder + ")");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    fail("{}: cannot write ({}); check free disk space", lock.string(), std::strerror(errno));

  std::vector<fs::path> stale, earlier;
  for (const auto& entry : fs::directory_iterator(o.out, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_stale(name)) stale.push_back(entry.path());
    else if (is_run_file(name)) earlier.push_back(entry.path());
  }
  if (ec) fail("--out {}: cannot list the folder ({})", o.out.string(), ec.message());
  for (const auto& p : stale) remove_or_fail(p);
  if (earlier.empty() || !o.resume_from_checkpoint.empty()) return;
  if (!o.overwrite_output_dir)
    fail("--out {}: holds an earlier run ({}); pass --overwrite-output-dir to replace it, "
         "--resume-from-checkpoint to continue it, or choose another folder",
         o.out.string(), earlier.front().filename().string());
  for (const auto& p : earlier) remove_or_fail(p);
}

OutputDir::~OutputDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock; the file stays (removing it would race)
}

void OutputDir::cut_metrics_after(int64_t step) const {
  const fs::path file = path_ / "metrics.jsonl";
  std::ifstream in(file);
  if (!in) return;
  std::string kept, line;
  bool cut = false;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    const bool keep = !in.eof() && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
                      j["step"].get<int64_t>() <= step;
    if (keep) kept += line + "\n";
    else cut = true;
  }
  if (!cut) return;
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      fail("{}: cannot write ({}); check free disk space", tmp.string(), std::strerror(errno));
    }
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) fail("{}: cannot replace ({})", file.string(), ec.message());
}

std::vector<std::pair<int64_t, fs::path>> OutputDir::checkpoints() const {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path_, ec)) {
    const int64_t n = checkpoint_number(entry.path().filename().string());
    if (n >= 0 && entry.is_directory(ec)) out.emplace_back(n, entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> OutputDir::prune_checkpoints(int64_t limit) const {
  std::vector<fs::path> removed;
  if (limit <= 0) return removed;
  auto all = checkpoints();
  for (size_t i = 0; i + static_cast<size_t>(limit) < all.size(); ++i) {
    remove_or_fail(all[i].second);
    removed.push_back(all[i].second);
  }
  return removed;
}

}  // namespace duet::trainer
