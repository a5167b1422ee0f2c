#pragma once
// Reference log-probs computed once (`duet ref`) and reused by `duet train
// --ref-cache`, so training loads no reference weights. The cache is keyed so
// that it cannot be applied to the wrong inputs: every example carries a hash
// of its token ids (which covers the dataset, the tokenizer, the chat template
// and truncation), and the file carries a hash of the reference weights.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/engine.hpp"
#include "engine/parameters.hpp"
#include "engine/scoring.hpp"
#include "layout/example.hpp"

namespace duet::trainer {

uint64_t hash_tokens(const layout::TokenizedExample& example);
uint64_t hash_weights(const engine::ParameterSet<float>& params);
// Of the examples' hash_tokens in order: the data a run trains on.
uint64_t hash_examples(std::span<const layout::TokenizedExample> examples);
std::string hash_hex(uint64_t hash);

struct CachedExample {
  uint64_t tokens_hash = 0;
  std::vector<double> logps;  // per response
};

class ReferenceCache {
 public:
  // Scores `examples` with the engine's policy, which holds the reference
  // weights (shared layout, packed into rows of pack_tokens), and writes the
  // cache file.
  static void build(const std::filesystem::path& file, engine::Engine& reference,
                    std::span<const layout::TokenizedExample> examples, int64_t pack_tokens);

  static ReferenceCache load(const std::filesystem::path& file);
  // The cache file's text (`origin` names it in errors); fuzzed by fuzz/fuzz_ref_cache.cpp.
  static ReferenceCache parse(std::string_view text, const std::string& origin);

  // duet::fail unless every example is in the cache with the same tokens.
  void check(std::span<const layout::TokenizedExample> examples) const;

  // The cached scores of a batch's responses, in batch.responses order.
  std::vector<engine::ResponseLogp> scores(const engine::Batch& batch) const;

  uint64_t weights_hash() const { return weights_hash_; }

 private:
  std::filesystem::path file_;
  uint64_t weights_hash_ = 0;
  std::unordered_map<int64_t, CachedExample> examples_;
};

}  // namespace duet::trainer
