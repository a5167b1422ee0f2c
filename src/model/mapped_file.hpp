#pragma once
// A whole file mapped read-only into memory. Checkpoints are many gigabytes:
// mapping lets the OS page tensors in on demand instead of reading them all.
#include <cstddef>
#include <filesystem>
#include <span>

namespace duet::model {

class MappedFile {
 public:
  // Maps `path`; duet::Error when it is missing, not a regular file, or unreadable.
  // An empty file maps to an empty span.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace duet::model
