// Replays each fuzz target's seed corpus (fuzz/corpus/TARGET/) and every input
// that once crashed it (fuzz/regressions/TARGET/, one file each, kept when the
// bug was fixed) through the target's harness: each must parse or throw
// duet::Error, nothing else (the harness catches only duet::Error).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int fuzz_tokenizer_json(const uint8_t* data, size_t size);
int fuzz_example_line(const uint8_t* data, size_t size);
int fuzz_config_json(const uint8_t* data, size_t size);
int fuzz_safetensors(const uint8_t* data, size_t size);
int fuzz_trainer_state(const uint8_t* data, size_t size);
int fuzz_adapter_config(const uint8_t* data, size_t size);
int fuzz_ref_cache(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

struct Target {
  const char* name;
  int (*run)(const uint8_t*, size_t);
};

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedsAndRegressionsParseOrGiveAUserError) {
  const Target t = GetParam();
  size_t seeds = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = fs::path(DUET_SOURCE_DIR) / "fuzz" / kind / t.name;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      SCOPED_TRACE(entry.path().string());
      EXPECT_NO_THROW(t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      if (std::string(kind) == "corpus") ++seeds;
    }
  }
  EXPECT_GE(seeds, 2u) << "the seed corpus of " << t.name << " is missing (python3 fuzz/make_seeds.py)";
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay,
                         ::testing::Values(Target{"tokenizer_json", fuzz_tokenizer_json},
                                           Target{"example_line", fuzz_example_line},
                                           Target{"config_json", fuzz_config_json},
                                           Target{"safetensors", fuzz_safetensors},
                                           Target{"trainer_state", fuzz_trainer_state},
                                           Target{"adapter_config", fuzz_adapter_config},
                                           Target{"ref_cache", fuzz_ref_cache}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
