#pragma once
// The training loop of `duet train`: data -> steps of N examples -> micro-batch
// rows -> policy (and reference) log-probs -> DPO-family loss normalised by N
// -> backward -> clip -> AdamW, with metrics, checkpoints, eval and exact
// resume. The model is behind engine::Engine (CPU fp32 today; a CUDA engine
// implements the same interface). With several ranks (docs/distributed.md)
// each rank scores its share of every step's rows, the pairs are shared, the
// engine reduces the gradients and steps its ZeRO shard, and rank 0 alone
// writes metrics, progress and the model files.
#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "dist/communicator.hpp"
#include "engine/engine.hpp"
#include "layout/step_batcher.hpp"
#include "trainer/checkpoint.hpp"
#include "trainer/options.hpp"
#include "trainer/pass_log.hpp"
#include "trainer/reference_cache.hpp"

namespace duet::trainer {

class MetricsLog;
class OutputDir;
struct PreferenceBatch;
class TensorBoardWriter;

class Trainer {
 public:
  // `comm`: the ranks of a data-parallel job (outlives the trainer); null: one process.
  explicit Trainer(TrainOptions options, dist::Communicator* comm = nullptr);
  ~Trainer();
  // Trains to the end (0) or until SIGINT, SIGTERM or SIGUSR1 (128 + the
  // signal's number, after writing a checkpoint).
  int run();

 private:
  struct StepOutcome {
    loss::BatchResult result;
    double grad_norm = 0;
    int64_t tokens = 0;  // non-padding tokens through the policy
  };
  void load_data();
  void reserve_rows();  // the engine's memory for the longest row, at the start
  void use_saved_product_algorithms();  // resume: before reserve_rows
  void resume();
  void precompute_reference();  // --precompute-ref-log-probs: builds OUT/ref_log_probs.jsonl, sets ref_cache  // restores and checks the checkpoint of --resume-from-checkpoint
  StepOutcome train_step(const layout::Step& step);
  // The engine's scores, each pass noted in passes_ (reference_scores: none
  // when cached or without a reference).
  std::vector<engine::ResponseLogp> reference_scores(const engine::Batch& batch);
  std::vector<engine::ResponseLogp> policy_scores(const engine::Batch& batch);
  // A rank with fewer rows than another: `count` rows' collective passes
  // without rows (Engine::score_empty, backprop_empty), in a row's order:
  // the reference's scoring (with_reference, unless cached), the policy's,
  // then the backprop (backprops).
  void empty_rows(size_t count, bool with_reference, bool backprops);
  // Before each backprop or backprop_empty of a step: marks the last one
  // (Engine::mark_last_backprop), backprops_left_ counting down to it.
  void before_backprop();
  nlohmann::json evaluate();
  void save_checkpoint_now();
  void save_final_model();
  bool main_rank() const { return comm_->rank() == 0; }
  void say(const std::string& line);  // a log line, from rank 0
  // Collective: rank 0's signal reaches every rank, so all stop at the same step.
  int agreed_stop_signal(int signal);

  TrainOptions o_;
  std::unique_ptr<dist::Communicator> own_comm_;  // one process, when none was given
  dist::Communicator* comm_ = nullptr;
  std::unique_ptr<OutputDir> out_;             // checked and locked before anything is loaded
  std::unique_ptr<engine::Engine> engine_;     // policy, reference model (if any), optimizer
  std::unique_ptr<ReferenceCache> ref_cache_;  // from duet ref
  std::vector<layout::TokenizedExample> train_, eval_;
  std::vector<PreferenceBatch> eval_rows_;  // eval_ laid out once, by load_data
  std::vector<layout::ExampleShape> shapes_;
  std::unique_ptr<layout::StepBatcher> batcher_;
  TrainerState state_;
  int64_t total_steps_ = 0;
  std::filesystem::path tokenizer_dir_;
  std::string data_summary_;  // what preparing the data truncated and dropped
  std::unique_ptr<MetricsLog> log_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;  // --report-to tensorboard
  size_t backprops_left_ = 0;  // in a step: backprops until the last (before_backprop)
  PassLog passes_;             // this rank's engine passes, compared across ranks after each step and evaluation
};

}  // namespace duet::trainer
