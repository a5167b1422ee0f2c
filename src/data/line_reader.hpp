#pragma once
// Streams a (possibly compressed) text file line by line, keeping only one
// buffer of it in memory. Lines lose their "\n" (and a "\r" before it); a
// UTF-8 byte-order mark at the start of the file is dropped.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "data/byte_source.hpp"

namespace duet::data {

class LineReader {
 public:
  explicit LineReader(const std::filesystem::path& path);

  // The next line (blank lines included); false at the end of the file.
  bool next(std::string& line);
  int64_t line_number() const { return line_number_; }  // of the last line returned
  std::string_view compression() const { return source_->compression(); }

 private:
  bool refill();

  std::unique_ptr<ByteSource> source_;
  std::string buffer_;
  size_t pos_ = 0;
  bool at_end_ = false;
  int64_t line_number_ = 0;
};

}  // namespace duet::data
