#pragma once
// A whole file's bytes, or nullopt when it cannot be opened: each caller says
// in its own error what the file was for and what to do.
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace duet {

inline std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

}  // namespace duet
