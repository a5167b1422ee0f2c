#pragma once
// What the trainer drives: one object per device that owns the policy (fp32
// master weights, gradients, AdamW state), the optional reference model and
// the activation workspace. The CPU engine is the fp32 reference; a CUDA
// engine implements the same interface (bf16 activations on the device), so
// the trainer, the losses and the checkpoints do not change.
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.hpp"
#include "engine/adamw.hpp"
#include "engine/batch.hpp"
#include "engine/lora.hpp"
#include "engine/parameters.hpp"
#include "engine/scoring.hpp"
#include "model/config.hpp"
#include "util/error.hpp"

namespace duet::engine {

class ShardedAdamW;

class Engine {
 public:
  virtual ~Engine() = default;

  virtual const model::ModelConfig& config() const = 0;
  virtual bool has_reference() const = 0;

  // Sequence log-probs of every response of `batch` (batch.responses order).
  // score_policy keeps what backprop needs for this batch; score_reference
  // may overwrite it, so call it first.
  virtual std::vector<ResponseLogp> score_policy(const Batch& batch) = 0;
  virtual std::vector<ResponseLogp> score_reference(const Batch& batch) = 0;

  virtual void zero_grad() = 0;
  // Accumulates the gradient of sum_r d_response[r] * logp_r for the batch
  // last given to score_policy.
  virtual void backprop(const Batch& batch, std::span<const double> d_response) = 0;
  // A data-parallel rank with no row where another rank calls backprop: takes
  // part in what that backprop does collectively (the CUDA engine's ZeRO-2
  // reduces each layer's gradients during the backward). Nothing elsewhere.
  virtual void backprop_empty() {}
  // A data-parallel rank with no row where another rank calls score_policy
  // (or score_reference, with `reference`): takes part in what that scoring
  // does collectively (the CUDA engine's ZeRO-3 gathers each layer's weights
  // during the forward). Nothing elsewhere.
  virtual void score_empty(bool reference) {}
  // The next backprop (or backprop_empty) is this rank's last before
  // optimizer_step, and every rank's last of the step: an engine may sum
  // the gradients over the ranks as that backward leaves each layer (the
  // CUDA engine at ZeRO stages 0 and 1). A backprop after it fails.
  virtual void mark_last_backprop() {}
  // The gradients accumulated since zero_grad(), on the host (tests, debugging).
  virtual const ParameterSet<float>& gradients() = 0;
  // Clips and applies AdamW at `lr`; returns the gradient norm before clipping.
  virtual double optimizer_step(double lr) = 0;

  // Where the device time goes (duet bench --breakdown): with timing on, the
  // engine records each op's time by kind; take_op_seconds returns the seconds
  // per kind since the last call. Engines that do not time their ops return none.
  virtual void set_op_timing(bool on) {}
  virtual std::vector<std::pair<std::string, double>> take_op_seconds() { return {}; }

  // Allocates now what rows of up to `tokens` tokens and `targets` log-prob
  // targets need (layout::StepBatcher::row_bound), so a run that cannot fit
  // fails at its start, saying what would fit, and not at the step whose row
  // is the longest. Engines that allocate per batch do nothing.
  virtual void reserve(int64_t tokens, int64_t targets) {}
  // The matrix-product algorithms reserve() chose by timing (the CUDA engine;
  // empty for engines that choose none), as text a checkpoint keeps.
  // use_product_algorithms, called before reserve(), makes a resumed run
  // compute with the ones of the run it continues; false: not usable here
  // (another GPU or library version), so reserve() times afresh.
  virtual std::string product_algorithms() const { return {}; }
  virtual bool use_product_algorithms(const std::string& text) { return false; }
  // Device memory in use (GiB; 0 for the CPU engine), for metrics and benchmarks.
  virtual double device_memory_gib() const { return 0.0; }

  // fp32 master weights and AdamW state, current on the host: what
  // checkpoints save and resume restores (then call state_changed()).
  virtual ParameterSet<float>& master_weights() = 0;
  virtual AdamW& optimizer() = 0;
  virtual void state_changed() = 0;

  // LoRA (engine/lora.hpp). With an adapter, master_weights(), gradients() and
  // optimizer() are the adapter's, base_weights() the frozen model under it,
  // and score_reference is the base with the adapter off. Without one,
  // base_weights() is master_weights() and lora() null.
  virtual const LoraConfig* lora() const { return nullptr; }
  virtual const ParameterSet<float>& base_weights() { return master_weights(); }
  // Training mode: LoRA dropout applies to score_policy (and its backprop)
  // only while it is on, as in PyTorch's model.train() / model.eval().
  virtual void set_training(bool on) {}

  // Data parallelism (docs/distributed.md). Called once, before training, on
  // every rank: optimizer_step then sums the gradients over `comm`'s ranks and
  // keeps ZeRO stage `zero_stage`'s shards, and the AdamW state lives in
  // sharded_optimizer() instead of optimizer(). An engine without it does
  // nothing for one rank and fails for more.
  virtual void enable_data_parallel(dist::Communicator& comm, int zero_stage) {
    if (comm.size() > 1)
      fail("{} ranks: this engine has no data parallelism yet; run one process, or the CPU engine (--device cpu) "
           "under mpirun",
           comm.size());
  }
  virtual ShardedAdamW* sharded_optimizer() { return nullptr; }
  // Collective: brings master_weights() up to date on every rank (ZeRO-3
  // keeps only the shard current between steps). Call before saving them.
  virtual void gather_weights() {}
  // Collective: makes the weights the next forward reads complete (ZeRO-3),
  // before each step and evaluation. The CPU engine computes with its master
  // weights, so it is gather_weights(); the CUDA engine's bf16 weights are
  // complete after every step, and its fp32 master reaches the host only for a save.
  virtual void gather_working_weights() { gather_weights(); }
};

// What an engine must hold beyond the weights it scores with: nothing
// (duet logprobs, duet ref), gradients (benchmarks of the step without the
// optimizer), or the whole training state (master weights, gradients, AdamW
// moments). The CPU engine always holds everything (fp32 reference).
enum class EngineState { scoring, gradients, training };

struct EngineOptions {
  std::string device = "cpu";       // "cpu" (fp32 reference) or "cuda" (bf16, one GPU)
  bool gradient_checkpointing = false;  // recompute each layer's activations in the backward (CUDA)
  EngineState state = EngineState::training;
  // Benchmarks: this architecture with random weights (transformers'
  // _init_weights: matrices N(0, random_std), norms 1, biases 0), made where
  // the engine runs; `model` is then not read. A reference, if any, is then
  // a copy of these starting weights (reference_is_start).
  std::optional<model::ModelConfig> random_model;
  uint64_t random_seed = 0;
  double random_std = 0.02;
  bool reference_is_start = false;  // the reference model = the starting weights (no second load)
  std::filesystem::path model;      // starting weights
  std::filesystem::path reference;  // empty: no reference model
  AdamWOptions adamw;
  // Data parallelism, known at construction so that the CUDA engine allocates
  // only its ZeRO shard of the optimizer state (enable_data_parallel must
  // then be given a communicator of this rank and size, and this stage).
  int rank = 0, ranks = 1, zero_stage = 0;
  // LoRA: `model` is the frozen base, an adapter is trained (CPU engine only so far).
  std::optional<LoraConfig> lora;
  std::filesystem::path adapter;   // start from this PEFT adapter folder; empty: PEFT's init from lora_seed
  uint64_t lora_seed = 0;          // the run's seed: the adapter's init and the dropout masks
  bool reference_is_base = false;  // LoRA: a reference = the base with the adapter off (no copy)
};

// duet::fail for a device this build has no engine for. "auto" is resolved
// by resolve_device.
std::unique_ptr<Engine> make_engine(const EngineOptions& options);

// --device auto (the default of train, ref and logprobs): "cuda" when this
// build has the CUDA engine and a GPU it runs on is visible (a Hopper GPU),
// unless `precision` is "fp32" (--fp32: the CPU engine's); else "cpu".
// "cpu" and "cuda" come back unchanged; --bf16 with no usable GPU fails.
std::string resolve_device(const std::string& device, const std::string& precision = "auto");

// Whether the CUDA engine can run here: false in a build without it, or with
// no visible GPU of the compute capability its kernels are built for.
bool cuda_engine_runs_here();

}  // namespace duet::engine
