#pragma once
// Paths of the fetched test assets (scripts/fetch_test_assets.sh, run by the
// CTest fixture `fetch_test_assets`).
#include <filesystem>
#include <string>

namespace duet::tok::testing {

inline std::filesystem::path assets_dir() { return DUET_ASSETS_DIR; }
inline std::filesystem::path tokenizer_dir(const std::string& family) {
  return assets_dir() / "tokenizers" / family;
}

}  // namespace duet::tok::testing
