// Run under mpirun (ctest does, with 3 ranks): the MPI communicator's
// collectives give the values they promise, and ZeRO AdamW over the ranks at
// each stage equals one-process AdamW on the summed gradient. Gradients are
// small integers, so the sums are exact and the comparison can be strict.
#include <gtest/gtest.h>

#include <random>

#include "dist/mpi_communicator.hpp"
#include "dist/shard_layout.hpp"
#include "engine/adamw.hpp"
#include "engine/sharded_adamw.hpp"

namespace duet {
namespace {

dist::MpiCommunicator& comm() {
  static dist::MpiCommunicator c;
  return c;
}

TEST(MpiCollectives, EachCollective) {
  auto& c = comm();
  const int r = c.rank(), n = c.size();
  ASSERT_GE(n, 2) << "run under mpirun -np 2 or more";
  std::vector<float> f = {1.0f * r, 2.0f, -0.5f * r};
  c.all_reduce_sum(f.data(), f.size());
  const float ranks_sum = n * (n - 1) / 2.0f;
  EXPECT_EQ(f, (std::vector<float>{ranks_sum, 2.0f * n, -0.5f * ranks_sum}));
  double d = r + 0.25;
  c.all_reduce_sum(&d, 1);
  EXPECT_EQ(d, ranks_sum + 0.25 * n);

  const size_t count = 3 * static_cast<size_t>(n) + 1;  // uneven shards
  const dist::ShardLayout layout(count, n);
  std::vector<float> send(count);
  for (size_t i = 0; i < count; ++i) send[i] = static_cast<float>(i * (r + 1));
  std::vector<float> shard(layout.size(r));
  c.reduce_scatter_sum(send.data(), shard.data(), count);
  for (size_t i = 0; i < shard.size(); ++i)
    EXPECT_EQ(shard[i], static_cast<float>((layout.begin(r) + i) * (n * (n + 1) / 2)));

  std::vector<float> gathered(count, -1.0f);
  for (size_t i = layout.begin(r); i < layout.end(r); ++i) gathered[i] = 10.0f * r + 1;
  c.all_gather(gathered.data(), count);
  for (int owner = 0; owner < n; ++owner)
    for (size_t i = layout.begin(owner); i < layout.end(owner); ++i) EXPECT_EQ(gathered[i], 10.0f * owner + 1);

  char text[6] = {0};
  if (r == n - 1) std::copy_n("hello", 6, text);
  c.broadcast(text, sizeof text, n - 1);
  EXPECT_STREQ(text, "hello");
  c.barrier();
}

TEST(MpiCollectives, ZeroStagesEqualOneProcessAdamW) {
  auto& c = comm();
  model::ModelConfig config;
  config.vocab_size = 30, config.hidden_size = 8, config.intermediate_size = 12, config.num_hidden_layers = 1;
  config.num_attention_heads = 2, config.num_key_value_heads = 1, config.head_dim = 4;
  config.max_position_embeddings = 32;
  const engine::AdamWOptions o{0.9, 0.999, 1e-8, 0.01, 40.0};  // the norm is above 40: clipping is on
  for (int stage = 0; stage <= 3; ++stage) {
    engine::ParameterSet<float> reference(config), mine(config);
    std::mt19937_64 weights(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& w : reference.values()) w = normal(weights);
    mine = reference;
    engine::AdamW adamw(config, o);
    engine::ShardedAdamW sharded(c, stage, mine.slots(), o);
    for (int step = 1; step <= 3; ++step) {
      engine::ParameterSet<float> sum(config), local(config);
      for (int r = 0; r < c.size(); ++r) {
        std::mt19937_64 rng(1000 * step + r);  // rank r's gradient, known to every rank
        std::uniform_int_distribution<int> small(-4, 4);
        for (size_t i = 0; i < sum.values().size(); ++i) {
          const float g = static_cast<float>(small(rng));
          sum.values()[i] += g;
          if (r == c.rank()) local.values()[i] = g;
        }
      }
      const double expected = adamw.step(reference, sum, 1e-2);
      const double norm = sharded.step(mine.values(), local.values(), 1e-2);
      EXPECT_NEAR(norm, expected, 1e-12 * expected) << "stage " << stage;
      EXPECT_EQ(sharded.weights_current(), stage != 3);
      sharded.gather_weights(mine.values());
    }
    for (size_t i = 0; i < mine.values().size(); ++i)
      ASSERT_NEAR(mine.values()[i], reference.values()[i], 1e-6f) << "stage " << stage << " element " << i;
    // Each rank holds the moments of its shard only (stage 0: all of them).
    const dist::ShardLayout layout(mine.values().size(), c.size());
    EXPECT_EQ(sharded.exp_avg().size(), stage == 0 ? mine.values().size() : layout.size(c.rank()));
  }
}

}  // namespace
}  // namespace duet
