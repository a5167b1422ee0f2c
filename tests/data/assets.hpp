#pragma once
// Paths of the fetched test assets (scripts/fetch_test_assets.sh, run by the
// CTest fixture `fetch_test_assets`) and of the recorded Hugging Face ids.
#include <filesystem>
#include <string>

namespace duet::data::testing {

inline std::filesystem::path tokenizer_dir(const std::string& family) {
  return std::filesystem::path(DUET_ASSETS_DIR) / "tokenizers" / family;
}

inline std::filesystem::path source_dir() { return DUET_SOURCE_DIR; }

}  // namespace duet::data::testing
