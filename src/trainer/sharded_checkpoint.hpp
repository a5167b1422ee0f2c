#pragma once
// Checkpoints of a data-parallel run (docs/distributed.md): rank 0 writes the
// model, the tokenizer files and trainer_state.json into DIR.tmp; every rank
// holding a distinct optimizer shard writes it there between two barriers;
// rank 0 renames DIR.tmp to DIR. Resuming reads this rank's element range
// from a checkpoint of any rank count (or of one process) and gathers the weights.
#include <filesystem>

#include "dist/communicator.hpp"
#include "engine/engine.hpp"
#include "trainer/checkpoint.hpp"

namespace duet::trainer {

// Collective; the engine must be data parallel (sharded_optimizer() set).
// With LoRA (engine.lora()) the weights are written as PEFT's adapter files,
// naming `base_model` as their base.
void save_sharded_checkpoint(dist::Communicator& comm, engine::Engine& engine, const std::filesystem::path& dir,
                             const TrainerState& state, const std::filesystem::path& tokenizer_source,
                             const std::string& base_model = {});

// Collective: restores this rank's master weights and AdamW moments from `dir`
// and gathers the weights; returns the saved trainer state.
TrainerState load_sharded_checkpoint(const std::filesystem::path& dir, engine::Engine& engine);

}  // namespace duet::trainer
