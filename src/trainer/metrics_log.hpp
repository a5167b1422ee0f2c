#pragma once
// Where metrics go: OUT/metrics.jsonl (one JSON object per logged step, TRL's
// key names), and for a person a progress bar on a terminal or plain lines
// otherwise.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace duet::trainer {

class MetricsLog {
 public:
  MetricsLog(const std::filesystem::path& file, int64_t total_steps, bool progress);
  ~MetricsLog();

  // Appends one record (and flushes: a killed run keeps what it logged).
  void write(const nlohmann::json& record);
  // Redraws the progress bar (terminal) or prints a line (otherwise).
  void show(int64_t step, const nlohmann::json& record);
  void message(const std::string& text);  // a line that does not break the bar

 private:
  std::FILE* file_ = nullptr;
  int64_t total_steps_;
  bool bar_;
  bool bar_drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace duet::trainer
