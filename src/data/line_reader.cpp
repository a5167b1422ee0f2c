#include "data/line_reader.hpp"

#include <cstring>

namespace duet::data {

namespace {
constexpr size_t kChunk = 1 << 20;
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}  // namespace

LineReader::LineReader(const std::filesystem::path& path) : source_(open_byte_source(path)) {}

// Appends one chunk after the unread tail; false when the source is exhausted.
bool LineReader::refill() {
  if (at_end_) return false;
  buffer_.erase(0, pos_);
  pos_ = 0;
  const size_t old = buffer_.size();
  buffer_.resize(old + kChunk);
  const size_t got = source_->read(buffer_.data() + old, kChunk);
  buffer_.resize(old + got);
  if (got == 0) at_end_ = true;
  return got > 0;
}

bool LineReader::next(std::string& line) {
  size_t scanned = pos_;
  for (;;) {
    const char* start = buffer_.data() + scanned;
    const void* nl = std::memchr(start, '\n', buffer_.size() - scanned);
    if (nl) {
      const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - buffer_.data());
      line.assign(buffer_, pos_, end - pos_);
      pos_ = end + 1;
      break;
    }
    scanned = buffer_.size() - pos_;  // offset of the unscanned part after refill moves the tail
    if (!refill()) {
      if (pos_ == buffer_.size()) return false;
      line.assign(buffer_, pos_, std::string::npos);  // last line without "\n"
      pos_ = buffer_.size();
      break;
    }
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (++line_number_ == 1 && line.starts_with(kBom)) line.erase(0, kBom.size());
  return true;
}

}  // namespace duet::data
