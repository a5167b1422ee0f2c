#include "trainer/metrics_log.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "util/error.hpp"

namespace duet::trainer {

MetricsLog::MetricsLog(const std::filesystem::path& file, int64_t total_steps, bool progress)
    : total_steps_(total_steps), bar_(progress && isatty(STDERR_FILENO)) {
  file_ = std::fopen(file.c_str(), "a");
  if (!file_) fail("{}: cannot open for appending", file.string());
}

MetricsLog::~MetricsLog() {
  if (bar_drawn_) std::fputc('\n', stderr);
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::string line = record.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

namespace {

double get(const nlohmann::json& r, const char* key) { return r.contains(key) ? r[key].get<double>() : 0.0; }

std::string clock(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{:02}:{:02}", s / 60, s % 60);
}

}  // namespace

void MetricsLog::show(int64_t step, const nlohmann::json& r) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string stats = fmt::format("loss {:.4f}  acc {:.2f}  margin {:+.3f}  lr {:.2e}  {:.0f} tok/s",
                                        get(r, "loss"), get(r, "rewards/accuracies"), get(r, "rewards/margins"),
                                        get(r, "learning_rate"), get(r, "tokens_per_second"));
  if (!bar_) {
    std::fprintf(stderr, "step %lld/%lld  %s\n", static_cast<long long>(step), static_cast<long long>(total_steps_),
                 stats.c_str());
    return;
  }
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(kWidth * step / std::max<int64_t>(1, total_steps_));
  const double eta = step > 0 ? elapsed / static_cast<double>(step) * static_cast<double>(total_steps_ - step) : 0;
  std::fprintf(stderr, "\r\033[K%lld/%lld [%s%s] %s<%s  %s", static_cast<long long>(step),
               static_cast<long long>(total_steps_), std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), clock(elapsed).c_str(),
               clock(eta).c_str(), stats.c_str());
  std::fflush(stderr);
  bar_drawn_ = true;
}

void MetricsLog::message(const std::string& text) {
  if (bar_drawn_) std::fputs("\r\033[K", stderr);
  std::fprintf(stderr, "%s\n", text.c_str());
  bar_drawn_ = false;
}

}  // namespace duet::trainer
