// The sharded state on one process: ZeRO AdamW with one rank is the plain
// AdamW; shard files re-shard (written by 3 ranks, read back by 2, by 1, or
// from a one-process checkpoint); the shard layout covers every element once.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <cmath>
#include <random>

#include "common/seeds.hpp"
#include "dist/shard_layout.hpp"
#include "dist/single_process.hpp"
#include "engine/adamw.hpp"
#include "engine/sharded_adamw.hpp"
#include "trainer/checkpoint.hpp"

#include <nlohmann/json.hpp>
#include "trainer/optimizer_shards.hpp"
#include "trainer/pair_exchange.hpp"
#include "util/error.hpp"

namespace duet {
namespace {

namespace fs = std::filesystem;

model::ModelConfig tiny_config() {
  model::ModelConfig c;
  c.architecture = model::Architecture::Llama;
  c.vocab_size = 40, c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 2, c.num_key_value_heads = 1, c.head_dim = 8, c.max_position_embeddings = 64;
  c.dtype = model::DType::F32;
  return c;
}

void fill_random(std::span<float> v, std::mt19937_64& rng) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (float& x : v) x = n(rng);
}

TEST(ShardLayout, CoversEveryElementOnce) {
  for (size_t total : {0, 1, 7, 9, 10, 1000})
    for (int ranks : {1, 2, 3, 4, 7}) {
      const dist::ShardLayout l(total, ranks);
      size_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        EXPECT_EQ(l.begin(r), next);
        EXPECT_LE(l.size(r), l.chunk);
        next = l.end(r);
      }
      EXPECT_EQ(next, total) << total << " over " << ranks;
    }
}

TEST(ShardedAdamW, OneRankIsPlainAdamWAtEveryStage) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const auto config = tiny_config();
  engine::AdamWOptions o{0.9, 0.95, 1e-8, 0.1, 0.5};  // clipping active: the norms are above 0.5
  for (int stage = 0; stage <= 3; ++stage) {
    std::mt19937_64 rng(seed);
    engine::ParameterSet<float> plain(config), grads(config);
    fill_random(plain.values(), rng);
    engine::ParameterSet<float> sharded_params = plain;
    engine::AdamW adamw(config, o);
    dist::SingleProcessCommunicator one;
    engine::ShardedAdamW sharded(one, stage, plain.slots(), o);
    for (int step = 0; step < 3; ++step) {
      fill_random(grads.values(), rng);
      engine::ParameterSet<float> g2 = grads;
      const double n1 = adamw.step(plain, grads, 1e-2);
      const double n2 = sharded.step(sharded_params.values(), g2.values(), 1e-2);
      sharded.gather_weights(sharded_params.values());
      EXPECT_NEAR(n1, n2, 1e-12 * n1) << "stage " << stage;
    }
    for (size_t i = 0; i < plain.values().size(); ++i)
      ASSERT_NEAR(plain.values()[i], sharded_params.values()[i], 1e-6f * (1 + std::abs(plain.values()[i])))
          << "stage " << stage << " element " << i;
    EXPECT_EQ(sharded.steps(), 3);
  }
}

struct Scratch {
  fs::path path = fs::temp_directory_path() / ("duet_shards_" + std::to_string(test::fresh_seed()));
  Scratch() { fs::create_directories(path); }
  ~Scratch() { fs::remove_all(path); }
};

TEST(OptimizerShards, ReShardOnRead) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto config = tiny_config();
  engine::ParameterSet<float> master(config), m(config), v(config);
  for (auto* set : {&master, &m, &v}) fill_random(set->values(), rng);
  const size_t total = master.values().size();
  Scratch dir;
  const dist::ShardLayout three(total, 3);
  for (int r = 0; r < 3; ++r) {
    const size_t b = three.begin(r), n = three.size(r);
    trainer::write_optimizer_shard(dir.path, r, 3, total,
                                   {master.values().subspan(b, n), m.values().subspan(b, n), v.values().subspan(b, n)});
  }
  // As each rank of a 2-rank resume reads its range, and as one process reads all.
  for (int ranks : {2, 1}) {
    const dist::ShardLayout l(total, ranks);
    for (int r = 0; r < ranks; ++r) {
      std::vector<float> a(l.size(r)), b(l.size(r)), c(l.size(r));
      trainer::read_optimizer_range(dir.path, 3, master.slots(), {l.begin(r), a, b, c});
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i], master.values()[l.begin(r) + i]);
        ASSERT_EQ(b[i], m.values()[l.begin(r) + i]);
        ASSERT_EQ(c[i], v.values()[l.begin(r) + i]);
      }
    }
  }
  // A missing shard names the file.
  fs::remove(dir.path / trainer::optimizer_shard_file(1, 3));
  std::vector<float> a(total), b(total), c(total);
  try {
    trainer::read_optimizer_range(dir.path, 3, master.slots(), {0, a, b, c});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer-shard-00001-of-00003.safetensors: missing"), std::string::npos)
        << e.what();
  }
}

TEST(OptimizerShards, ReadsAOneProcessCheckpoint) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto config = tiny_config();
  engine::ParameterSet<float> master(config);
  engine::AdamW adamw(config, {});
  for (auto* set : {&master, &adamw.first_moment(), &adamw.second_moment()}) fill_random(set->values(), rng);
  Scratch dir;
  trainer::TrainerState state;
  trainer::save_checkpoint(dir.path / "ckpt", {config, master, &adamw, &state, {}, nullptr, {}, nullptr});
  const dist::ShardLayout l(master.values().size(), 3);
  std::vector<float> a(l.size(1)), b(l.size(1)), c(l.size(1));
  trainer::read_optimizer_range(dir.path / "ckpt", 0, master.slots(), {l.begin(1), a, b, c});
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i], master.values()[l.begin(1) + i]);
    ASSERT_EQ(b[i], adamw.first_moment().values()[l.begin(1) + i]);
    ASSERT_EQ(c[i], adamw.second_moment().values()[l.begin(1) + i]);
  }
}

// The CUDA engine's tuned algorithms (Engine::product_algorithms) go into
// gemm_algorithms.txt beside trainer_state.json (not into it: hundreds of
// lines of hex) and come back unchanged; a state without them reads empty;
// a seventh-session checkpoint, which kept them in trainer_state.json, still reads.
TEST(CheckpointState, KeepsTheProductAlgorithms) {
  const auto config = tiny_config();
  engine::ParameterSet<float> master(config);
  engine::AdamW adamw(config, {});
  Scratch dir;
  trainer::TrainerState state;
  state.product_algorithms = "duet gemm algorithms 2 buckets/octave 2 cublasLt 130000 NVIDIA_H200\nexact 64 256 192 0 1 0 0 " +
                             std::to_string(test::fresh_seed()) + "\n";
  trainer::save_checkpoint(dir.path / "tuned", {config, master, &adamw, &state, {}, nullptr, {}, nullptr});
  EXPECT_EQ(trainer::read_training_state(dir.path / "tuned").state.product_algorithms, state.product_algorithms);
  ASSERT_TRUE(fs::exists(dir.path / "tuned" / "gemm_algorithms.txt"));
  std::ifstream json_file(dir.path / "tuned" / "trainer_state.json");
  const auto json = nlohmann::json::parse(json_file);
  EXPECT_FALSE(json.contains("product_algorithms"));
  // The seventh session's place for them.
  auto legacy = json;
  legacy["product_algorithms"] = state.product_algorithms;
  fs::remove(dir.path / "tuned" / "gemm_algorithms.txt");
  std::ofstream(dir.path / "tuned" / "trainer_state.json") << legacy.dump();
  EXPECT_EQ(trainer::read_training_state(dir.path / "tuned").state.product_algorithms, state.product_algorithms);
  state.product_algorithms.clear();
  trainer::save_checkpoint(dir.path / "plain", {config, master, &adamw, &state, {}, nullptr, {}, nullptr});
  EXPECT_EQ(trainer::read_training_state(dir.path / "plain").state.product_algorithms, "");
  EXPECT_FALSE(fs::exists(dir.path / "plain" / "gemm_algorithms.txt"));
}

TEST(StepPairs, PlacedPairsComeBackInRowOrder) {
  dist::SingleProcessCommunicator one;
  trainer::StepPairs pairs({1, 2});
  std::vector<loss::PairLogps> row1(2);
  row1[0].policy_chosen = -1.5, row1[1].chosen_tokens = 7;
  pairs.place(1, row1);
  EXPECT_THROW(pairs.share(one), Error);  // row 0 was placed by no rank
  std::vector<loss::PairLogps> row0(1);
  row0[0].ref_rejected = -3.0;
  EXPECT_THROW(pairs.place(0, row1), Error);  // two pairs for a row of one
  pairs.place(0, row0);
  const auto all = pairs.share(one);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].ref_rejected, -3.0);
  EXPECT_EQ(all[1].policy_chosen, -1.5);
  EXPECT_EQ(all[2].chosen_tokens, 7);
  EXPECT_TRUE(std::isnan(all[2].chosen_logits));  // NaN (no logits) survives the exchange
}

}  // namespace
}  // namespace duet
