// A safetensors file: the 8-byte header length, the JSON header (dtypes,
// shapes, data offsets, __metadata__) and its checks against the data
// section; then every tensor the header accepted is read (bytes and fp32
// conversion), which must stay inside the file. The input is a memfd file, so
// the reader maps it as it maps a checkpoint on disk.
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fuzz_target.hpp"
#include "model/safetensors.hpp"

DUET_FUZZ_TARGET(safetensors, data, size) {
  const int fd = ::memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, data + written, size - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  try {
    const duet::model::SafetensorsFile file("/proc/self/fd/" + std::to_string(fd));
    for (const auto& t : file.tensors()) {
      (void)file.bytes(t);
      if (t.numel() <= (1 << 20) &&
          (t.dtype == duet::model::DType::BF16 || t.dtype == duet::model::DType::F16 || t.dtype == duet::model::DType::F32)) {
        std::vector<float> out(static_cast<size_t>(t.numel()));
        file.load_f32(t, out);
      }
    }
  } catch (const duet::Error&) {
  }
  ::close(fd);
  return 0;
}
