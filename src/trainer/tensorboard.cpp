#include "trainer/tensorboard.hpp"

#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "util/error.hpp"

namespace duet::trainer {

namespace {

constexpr std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli polynomial
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = crc32c_table();

// Protobuf wire format: varints, tags, little-endian fixed-width numbers.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void tag(std::string& out, int field, int wire_type) { varint(out, static_cast<uint64_t>(field) << 3 | wire_type); }
template <typename T>
void little_endian(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void bytes_field(std::string& out, int field, std::string_view bytes) {
  tag(out, field, 2);
  varint(out, bytes.size());
  out.append(bytes);
}

// An Event with wall_time (now) and step; the caller appends the rest.
std::string event_head(int64_t step) {
  std::string e;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  tag(e, 1, 1);  // wall_time: double, fixed64
  little_endian(e, std::bit_cast<uint64_t>(now));
  if (step != 0) {
    tag(e, 2, 0);  // step: int64, varint (two's complement)
    varint(e, static_cast<uint64_t>(step));
  }
  return e;
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t c = crc32c(bytes);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the TensorBoard folder ({})", dir.string(), ec.message());
  char host[256] = "localhost";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
  file_ = dir / fmt::format("events.out.tfevents.{}.{}.{}", seconds, host, ::getpid());
  out_ = std::fopen(file_.c_str(), "wb");
  if (!out_) fail("{}: cannot create ({})", file_.string(), std::strerror(errno));
  std::string e = event_head(0);
  bytes_field(e, 3, "brain.Event:2");  // file_version: TensorBoard checks it first
  write_event(e);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (out_) std::fclose(out_);
}

void TensorBoardWriter::write_event(const std::string& event) {
  std::string record;
  little_endian(record, static_cast<uint64_t>(event.size()));
  little_endian(record, masked_crc32c(record));
  record += event;
  little_endian(record, masked_crc32c(event));
  // Flushed per event, as metrics.jsonl: a killed run keeps what it logged.
  if (std::fwrite(record.data(), 1, record.size(), out_) != record.size() || std::fflush(out_) != 0)
    fail("{}: cannot write ({}); check free disk space", file_.string(), std::strerror(errno));
}

void TensorBoardWriter::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  std::string summary;
  for (const auto& [name, value] : values) {
    std::string v;
    bytes_field(v, 1, name);  // tag
    tag(v, 2, 5);             // simple_value: float, fixed32
    little_endian(v, std::bit_cast<uint32_t>(static_cast<float>(value)));
    bytes_field(summary, 1, v);
  }
  std::string e = event_head(step);
  bytes_field(e, 5, summary);
  write_event(e);
}

void TensorBoardWriter::record(const nlohmann::json& record) {
  std::vector<std::pair<std::string, double>> values;
  for (const auto& [key, value] : record.items()) {
    if (key == "step" || !value.is_number()) continue;
    const std::string name = key.starts_with("eval_") ? "eval/" + key.substr(5) : "train/" + key;
    values.emplace_back(name, value.get<double>());
  }
  scalars(record.at("step").get<int64_t>(), values);
}

void TensorBoardWriter::restart(int64_t step) {
  std::string e = event_head(step);
  std::string session_log;
  tag(session_log, 1, 0);  // status = START
  varint(session_log, 1);
  bytes_field(e, 6, session_log);
  write_event(e);
}

}  // namespace duet::trainer
