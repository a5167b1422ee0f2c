#pragma once
// `--report-to tensorboard`: TensorBoard event files, written directly.
//
// An event file is a TFRecord stream: each record is
//   uint64 length, uint32 masked CRC32C of those 8 bytes, data, uint32 masked CRC32C of data
// (little endian; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8), and each record's
// data is a serialized tensorflow.Event protobuf. Only a handful of fields are
// written, so they are encoded here by hand (Debian 12 packages no library that
// writes TensorBoard events, and protobuf alone would need TensorFlow's .proto files):
//   Event      { double wall_time = 1; int64 step = 2; string file_version = 3;
//                Summary summary = 5; SessionLog session_log = 6; }
//   Summary    { repeated Value value = 1; }
//   Value      { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; }  (START = 1)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace duet::trainer {

// CRC-32C (Castagnoli), as TFRecord uses it, and its masked form.
uint32_t crc32c(std::string_view bytes);
uint32_t masked_crc32c(std::string_view bytes);

class TensorBoardWriter {
 public:
  // Creates `dir` and a new file events.out.tfevents.<seconds>.<host>.<pid> in it,
  // starting with the file_version event ("brain.Event:2").
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event at `step` with a scalar per (tag, value).
  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  // A metrics.jsonl record as transformers' TensorBoardCallback writes it: every
  // number but `step`, at the record's `step`, tagged `eval/KEY` for `eval_KEY`
  // and `train/KEY` otherwise.
  void record(const nlohmann::json& record);
  // A SessionLog START at `step`: TensorBoard drops the events at `step` and
  // after that an earlier, killed run of a resumed training had logged.
  void restart(int64_t step);

  const std::filesystem::path& file() const { return file_; }

 private:
  void write_event(const std::string& event);

  std::filesystem::path file_;
  std::FILE* out_ = nullptr;
};

}  // namespace duet::trainer
