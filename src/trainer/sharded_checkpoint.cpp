#include "trainer/sharded_checkpoint.hpp"

#include "engine/sharded_adamw.hpp"
#include "trainer/optimizer_shards.hpp"
#include "util/error.hpp"

namespace duet::trainer {

namespace fs = std::filesystem;

namespace {

engine::ShardedAdamW& sharded_of(engine::Engine& engine) {
  engine::ShardedAdamW* sharded = engine.sharded_optimizer();
  if (!sharded) fail("internal: a sharded checkpoint of an engine that is not data parallel");
  return *sharded;
}

}  // namespace

void save_sharded_checkpoint(dist::Communicator& comm, engine::Engine& engine, const fs::path& dir,
                             const TrainerState& state, const fs::path& tokenizer_source,
                             const std::string& base_model) {
  engine::ShardedAdamW& sharded = sharded_of(engine);
  engine.gather_weights();  // ZeRO-3: rank 0 writes every weight
  const auto write_mine = [&](const fs::path& folder) {
    if (comm.rank() >= sharded.shard_count()) return;  // ZeRO-0: rank 0's copy is the one shard
    const size_t begin = sharded.shard_begin(), n = sharded.shard_end() - begin;
    write_optimizer_shard(folder, sharded.shard_index(), sharded.shard_count(), sharded.total(),
                          {engine.master_weights().values().subspan(begin, n), sharded.exp_avg(), sharded.exp_avg_sq()});
  };
  if (comm.rank() == 0) {
    const ShardedOptimizer shards{sharded.steps(), sharded.shard_count(), [&](const fs::path& folder) {
                                    write_mine(folder);
                                    // Writing a large model can outlast --nccl-timeout: these
                                    // waits are unbounded (a failing rank still aborts the job).
                                    comm.barrier_unbounded();  // the folder exists: the others write
                                    comm.barrier_unbounded();  // they have written
                                  }};
    save_checkpoint(dir, {engine.config(), engine.master_weights(), nullptr, &state, tokenizer_source, engine.lora(),
                          base_model, &shards});
  } else {
    comm.barrier_unbounded();
    write_mine(dir.string() + ".tmp");  // the folder save_checkpoint fills before its rename
    comm.barrier_unbounded();
  }
  comm.barrier();  // renamed: the checkpoint is complete for every rank
}

TrainerState load_sharded_checkpoint(const fs::path& dir, engine::Engine& engine) {
  engine::ShardedAdamW& sharded = sharded_of(engine);
  SavedTraining saved = read_training_state(dir);
  const size_t begin = sharded.shard_begin(), n = sharded.shard_end() - begin;
  read_optimizer_range(dir, saved.optimizer_shards, sharded.slots(),
                       {begin, engine.master_weights().values().subspan(begin, n), sharded.exp_avg(),
                        sharded.exp_avg_sq()});
  sharded.set_steps(saved.adam_steps);
  sharded.mark_weights_stale();  // only this rank's range was read
  engine.gather_weights();
  return std::move(saved.state);
}

}  // namespace duet::trainer
