#include "trainer/trainer.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/lora_files.hpp"
#include "dist/single_process.hpp"
#include "layout/row_builder.hpp"
#include "layout/pack_rows.hpp"
#include "trainer/metrics_log.hpp"
#include "trainer/tensorboard.hpp"
#include "trainer/output_dir.hpp"
#include "trainer/pair_exchange.hpp"
#include "trainer/preference_batch.hpp"
#include "trainer/schedule.hpp"
#include "trainer/sharded_checkpoint.hpp"
#include "trainer/training_data.hpp"
#include "util/error.hpp"

namespace duet::trainer {

namespace fs = std::filesystem;

namespace {

// The signal that asked the run to stop (SIGINT, SIGTERM, SIGUSR1), or 0.
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal = signal; }

// Installs on_stop_signal for the run's lifetime and restores the previous handlers.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &action, &previous_[i]);
  }
  ~StopSignals() {
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &previous_[i], nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction previous_[std::size(kSignals)];
};

// A checkpoint must hold what this run trains (a full model or an adapter of
// this shape) before its tensors are read.
void check_resumed_weights(const fs::path& checkpoint, const engine::LoraConfig* now) {
  const bool has_adapter = fs::exists(checkpoint / engine::kAdapterConfigFile);
  if (!now) {
    if (has_adapter)
      fail("--resume-from-checkpoint {}: written by a --use-peft run (it holds an adapter): give --use-peft and its "
           "LoRA options", checkpoint.string());
    return;
  }
  if (!has_adapter)
    fail("--resume-from-checkpoint {}: holds no adapter ({}): it was not written by a --use-peft run; leave "
         "--use-peft out", checkpoint.string(), engine::kAdapterConfigFile);
  const engine::LoraConfig saved = engine::read_adapter_config(checkpoint);
  if (saved.r != now->r || saved.target_modules != now->target_modules)
    fail("--resume-from-checkpoint {}: its adapter has lora_r {} on {}, this run asks for lora_r {} on {}: give the "
         "same --lora-r and --lora-target-modules", checkpoint.string(), saved.r, fmt::join(saved.target_modules, ","),
         now->r, fmt::join(now->target_modules, ","));
}

nlohmann::json metrics_record(const loss::BatchResult& r, const std::string& prefix) {
  nlohmann::json j;
  j[prefix + "loss"] = r.loss_mean;
  for (const auto& [k, v] : r.metrics) j[prefix + k] = v;
  return j;
}

}  // namespace

Trainer::Trainer(TrainOptions options, dist::Communicator* comm) : o_(std::move(options)), comm_(comm) {
  if (!comm_) {
    own_comm_ = std::make_unique<dist::SingleProcessCommunicator>();
    comm_ = own_comm_.get();
  }
  o_.validate();
  if (main_rank()) out_ = std::make_unique<OutputDir>(o_);
  if (o_.precompute_ref_log_probs && loss::needs_reference(o_.loss)) {
    if (main_rank()) precompute_reference();
    comm_->barrier_unbounded();  // the others wait, however long, and read what rank 0 wrote
    o_.ref_cache = o_.out / "ref_log_probs.jsonl";
  }
  const bool cached_reference = loss::needs_reference(o_.loss) && !o_.ref_cache.empty();
  engine::EngineOptions eo;
  eo.device = o_.device;
  eo.gradient_checkpointing = o_.gradient_checkpointing;
  eo.model = o_.model;
  const bool live_reference = loss::needs_reference(o_.loss) && !cached_reference;
  if (o_.use_peft) {
    // TRL with a peft_config: the reference is the base with the adapter off.
    eo.lora = o_.adapter.empty() ? o_.lora_config() : engine::read_adapter_config(o_.adapter);
    eo.adapter = o_.adapter;
    eo.lora_seed = o_.seed;
    eo.reference_is_base = live_reference;
  } else if (live_reference) {
    eo.reference = o_.ref_model.empty() ? o_.model : o_.ref_model;
  }
  eo.adamw = {o_.adam_beta1, o_.adam_beta2, o_.adam_epsilon, o_.weight_decay, o_.max_grad_norm};
  eo.rank = comm_->rank(), eo.ranks = comm_->size(), eo.zero_stage = static_cast<int>(o_.zero_stage);
  engine_ = engine::make_engine(eo);
  if (comm_->size() > 1 || o_.zero_stage > 0) engine_->enable_data_parallel(*comm_, static_cast<int>(o_.zero_stage));
  // The starting weights, before a resume replaces them (with LoRA: the base's, and the adapter's).
  const uint64_t model_hash = hash_weights(engine_->base_weights());
  state_.fingerprints["model_xxh3"] = hash_hex(model_hash);
  if (engine_->lora()) state_.fingerprints["adapter_xxh3"] = hash_hex(hash_weights(engine_->master_weights()));
  if (cached_reference) {
    ref_cache_ = std::make_unique<ReferenceCache>(ReferenceCache::load(o_.ref_cache));
    // The cache must come from the reference: the starting weights, or --ref-model's.
    const fs::path reference = o_.ref_model.empty() ? o_.model : o_.ref_model;
    uint64_t reference_hash = model_hash;
    if (!o_.ref_model.empty()) {
      engine::ParameterSet<float> weights(engine_->config());
      engine::load_weights(weights, o_.ref_model);
      reference_hash = hash_weights(weights);
    }
    if (ref_cache_->weights_hash() != reference_hash)
      fail("{}: built from other reference weights than {}: rebuild it with duet ref --model {}",
           o_.ref_cache.string(), reference.string(), reference.string());
  }
  load_data();
  state_.fingerprints["data_xxh3"] = hash_hex(hash_examples(train_));
  batcher_ = std::make_unique<layout::StepBatcher>(shapes_, o_.batcher_options(comm_->size()));
  if (!o_.resume_from_checkpoint.empty()) use_saved_product_algorithms();
  reserve_rows();
  total_steps_ = o_.max_steps > 0
                     ? o_.max_steps
                     : static_cast<int64_t>(std::ceil(o_.num_train_epochs * static_cast<double>(batcher_->steps_per_epoch())));
  state_.options = to_json(o_);
  if (!o_.resume_from_checkpoint.empty()) resume();
}

void Trainer::resume() {
  check_resumed_weights(o_.resume_from_checkpoint, engine_->lora());
  // Data parallel: each rank reads its shard, whatever number of ranks wrote the checkpoint.
  TrainerState saved =
      engine_->sharded_optimizer()
          ? load_sharded_checkpoint(o_.resume_from_checkpoint, *engine_)
          : load_training_state(o_.resume_from_checkpoint, engine_->master_weights(), engine_->optimizer());
  engine_->state_changed();
  // A resumed run must be the run that was interrupted: the same inputs and
  // the options that shape it, unless the user lists what may change.
  std::vector<std::string> changes = changed_run_options(saved.options, state_.options, o_.allow_option_changes);
  const auto allowed = [&](const char* name) {
    return std::find(o_.allow_option_changes.begin(), o_.allow_option_changes.end(), name) !=
           o_.allow_option_changes.end();
  };
  const std::pair<const char*, const char*> fingerprints[] = {
      {"model_xxh3", "model (other starting weights)"},
      {"data_xxh3", "data (other training examples, tokenizer, template or truncation)"},
      {"adapter_xxh3", "adapter (other starting LoRA weights)"}};
  for (const auto& [key, what] : fingerprints) {
    const std::string name = std::string(key).substr(0, std::string(key).find('_'));
    if (saved.fingerprints.contains(key) && saved.fingerprints[key] != state_.fingerprints[key] &&
        !allowed(name.c_str()))
      changes.push_back(what);
  }
  if (!changes.empty())
    fail("--resume-from-checkpoint {}: this run is not the one that wrote the checkpoint: {}; give the same options, "
         "or list what may change with --allow-option-changes NAME,...",
         o_.resume_from_checkpoint.string(), fmt::format("{}", fmt::join(changes, "; ")));
  const nlohmann::json options = state_.options, fingerprints_now = state_.fingerprints;
  state_ = std::move(saved);
  state_.options = options;  // what the next checkpoint records: this run's
  state_.fingerprints = fingerprints_now;
  state_.product_algorithms = engine_->product_algorithms();  // the saved ones, unless timed afresh
  batcher_->check_position(state_.position);
}

Trainer::~Trainer() = default;

void Trainer::precompute_reference() {
  // TRL's precompute_ref_log_probs: the reference scores every example once
  // (what duet ref does), then is freed before the policy is loaded.
  const fs::path cache = o_.out / "ref_log_probs.jsonl";
  {
    engine::EngineOptions eo;
    eo.device = o_.device;
    eo.model = o_.ref_model.empty() ? o_.model : o_.ref_model;
    auto reference = engine::make_engine(eo);
    TrainOptions all = o_;
    all.eval_fraction = 0;  // every example of --data, as duet ref scores them
    const TrainingData data = load_training_data(all, reference->config());
    ReferenceCache::build(cache, *reference, data.train, o_.pack_tokens > 0 ? o_.pack_tokens : 2048);
  }
  std::fprintf(stderr, "duet train: reference log-probs precomputed into %s\n", cache.c_str());
  o_.ref_cache = cache;
}

void Trainer::use_saved_product_algorithms() {
  // The CUDA engine times its matrix products' algorithms at reserve; a
  // resume computes with the interrupted run's (bf16's last bits depend on them).
  const std::string saved = read_training_state(o_.resume_from_checkpoint).state.product_algorithms;
  if (saved.empty() || engine_->use_product_algorithms(saved)) return;
  if (main_rank())
    std::fprintf(stderr,
                 "duet train: %s was written on another GPU or cuBLASLt (%s): the matrix products are timed afresh, "
                 "so the resumed steps may differ from the interrupted run's in bf16's last bits\n",
                 o_.resume_from_checkpoint.c_str(), saved.substr(0, saved.find('\n')).c_str());
}

void Trainer::reserve_rows() {
  // The longest training row any step can bring, and the evaluation rows (laid
  // out once): the engine allocates for them now, so a run that does not fit
  // the GPU stops here, not hours in.
  layout::RowBound bound = batcher_->row_bound();
  for (const PreferenceBatch& pb : eval_rows_) {
    bound.tokens = std::max(bound.tokens, pb.batch.n_tokens() - pb.batch.padding);
    bound.targets = std::max(bound.targets, pb.batch.n_targets());
  }
  // The CUDA engine also times its matrix products' algorithms here (kept in checkpoints).
  const auto start = std::chrono::steady_clock::now();
  engine_->reserve(bound.tokens, bound.targets);
  state_.product_algorithms = engine_->product_algorithms();
  // Tuned: the text has lines past its header.
  const bool tuned = state_.product_algorithms.find('\n') + 1 < state_.product_algorithms.size();
  if (main_rank() && tuned)
    std::fprintf(stderr, "duet train: matrix products ready for rows of up to %lld tokens in %.1f s\n",
                 static_cast<long long>(bound.tokens),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void Trainer::load_data() {
  TrainingData d = load_training_data(o_, engine_->config());
  train_ = std::move(d.train);
  eval_ = std::move(d.eval);
  tokenizer_dir_ = std::move(d.tokenizer_dir);
  data_summary_ = d.summary();
  for (const auto& e : train_) shapes_.push_back(layout::shape_of(e));
  for (const auto& row : layout::pack_examples(eval_, o_.layout, o_.pack_tokens, 0)) eval_rows_.emplace_back(row);
  if (ref_cache_) {
    ref_cache_->check(train_);
    ref_cache_->check(eval_);
  }
}

std::vector<engine::ResponseLogp> Trainer::reference_scores(const engine::Batch& batch) {
  if (ref_cache_) return ref_cache_->scores(batch);
  if (!engine_->has_reference()) return {};
  passes_.note(Pass::reference);
  return engine_->score_reference(batch);
}

std::vector<engine::ResponseLogp> Trainer::policy_scores(const engine::Batch& batch) {
  passes_.note(Pass::policy);
  return engine_->score_policy(batch);
}

Trainer::StepOutcome Trainer::train_step(const layout::Step& step) {
  StepOutcome out;
  engine_->set_training(true);  // LoRA dropout on, for this step's scoring and backprop only
  engine_->gather_working_weights();  // ZeRO-3: every rank, even one without rows this step
  engine_->zero_grad();
  for (int64_t t : step.row_tokens) out.tokens += t;
  // This rank's rows; pairs keep the one-process order (row by row), so the
  // loss sees the same vector whatever the rank count.
  const std::vector<size_t>& mine = step.rank_rows.at(static_cast<size_t>(comm_->rank()));
  std::vector<size_t> pairs_per_row;
  for (const auto& members : step.rows) pairs_per_row.push_back(members.size());
  StepPairs step_pairs(pairs_per_row);
  std::vector<PreferenceBatch> rows;
  for (size_t r : mine) rows.emplace_back(layout::build_row(train_, step.rows[r], o_.layout, o_.pack_tokens, 0));

  // Every rank runs as many passes as the rank with the most rows (ZeRO-2's
  // reduces and ZeRO-3's gathers are collective), in the same order; the
  // last backprop of each rank is marked (ZeRO-0/1 then sums as it goes).
  size_t most_rows = 0;
  for (const auto& r : step.rank_rows) most_rows = std::max(most_rows, r.size());
  const bool coupled = loss::couples_pairs(o_.loss);
  backprops_left_ = coupled ? 0 : most_rows;
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& b = rows[k].batch;
    auto ref = reference_scores(b);
    auto policy = policy_scores(b);
    const std::vector<loss::PairLogps> row_pairs = rows[k].pairs(policy, ref, engine_->config().vocab_size);
    step_pairs.place(mine[k], row_pairs);
    if (!coupled) {
      // Each row's pairs are independent: backward now, normalised by the
      // step's N (the loss's normalisation), while the engine still holds this row's activations.
      loss::LossState unused = state_.loss_state;
      auto res = loss::compute(o_.loss, row_pairs, unused, step.num_examples);
      before_backprop();
      engine_->backprop(b, rows[k].response_gradients(res.pairs));
    }
  }
  empty_rows(most_rows - rows.size(), true, !coupled);  // reference, policy and (uncoupled) backprop
  const std::vector<loss::PairLogps> all_pairs = step_pairs.share(*comm_);
  if (coupled) {
    // The loss couples the step's pairs: all log-probs first (every rank has
    // them all now), then each of this rank's rows again with its share of the gradient.
    out.result = loss::compute(o_.loss, all_pairs, state_.loss_state);
    backprops_left_ = most_rows;
    for (size_t k = 0; k < rows.size(); ++k) {
      policy_scores(rows[k].batch);
      std::span<const loss::PairResult> part(out.result.pairs.data() + step_pairs.first(mine[k]),
                                             step_pairs.count(mine[k]));
      before_backprop();
      engine_->backprop(rows[k].batch, rows[k].response_gradients(part));
    }
    empty_rows(most_rows - rows.size(), false, true);  // the policy again, then backprop
  } else {
    out.result = loss::evaluate(o_.loss, all_pairs, state_.loss_state);
  }
  engine_->set_training(false);
  passes_.agree(*comm_, fmt::format("step {}", state_.global_step + 1));
  return out;
}

void Trainer::before_backprop() {
  if (backprops_left_ > 0 && --backprops_left_ == 0) {
    passes_.note(Pass::last_mark);
    engine_->mark_last_backprop();
  }
  passes_.note(Pass::backprop);
}

void Trainer::empty_rows(size_t count, bool with_reference, bool backprops) {
  for (size_t k = 0; k < count; ++k) {  // as a row: reference_scores, score_policy, backprop
    if (with_reference && !ref_cache_ && engine_->has_reference()) {
      passes_.note(Pass::reference);
      engine_->score_empty(true);
    }
    passes_.note(Pass::policy);
    engine_->score_empty(false);
    if (backprops) {
      before_backprop();
      engine_->backprop_empty();
    }
  }
}

nlohmann::json Trainer::evaluate() {
  if (eval_.empty()) return {};
  // Rows round-robin over the ranks; the pairs in the one-process order.
  engine_->gather_working_weights();
  std::vector<size_t> pairs_per_row;
  for (const PreferenceBatch& pb : eval_rows_) pairs_per_row.push_back(pb.examples.size());
  StepPairs eval_pairs(pairs_per_row);
  const auto ranks = static_cast<size_t>(comm_->size());
  size_t mine = 0;
  for (size_t r = static_cast<size_t>(comm_->rank()); r < eval_rows_.size(); r += ranks, ++mine) {
    const PreferenceBatch& pb = eval_rows_[r];
    auto ref = reference_scores(pb.batch);
    auto policy = policy_scores(pb.batch);
    eval_pairs.place(r, pb.pairs(policy, ref, engine_->config().vocab_size));
  }
  empty_rows((eval_rows_.size() + ranks - 1) / ranks - mine, true, false);  // rank 0 has the most rows
  passes_.agree(*comm_, "evaluation");
  const std::vector<loss::PairLogps> pairs = eval_pairs.share(*comm_);
  return metrics_record(loss::evaluate(o_.loss, pairs, state_.loss_state), "eval_");
}

void Trainer::save_checkpoint_now() {
  const fs::path dir = o_.out / fmt::format("checkpoint-{}", state_.global_step);
  if (engine_->sharded_optimizer()) {
    save_sharded_checkpoint(*comm_, *engine_, dir, state_, tokenizer_dir_, o_.model.string());
  } else {  // the optimizer whole on every rank (one process, or the CUDA engine's ZeRO 0): rank 0 writes it
    if (main_rank())
      save_checkpoint(dir, {engine_->config(), engine_->master_weights(), &engine_->optimizer(), &state_,
                            tokenizer_dir_, engine_->lora(), o_.model.string()});
    comm_->barrier_unbounded();  // complete before any rank goes on
  }
  if (!main_rank()) return;
  log_->message(fmt::format("saved {}", dir.string()));
  for (const auto& old : out_->prune_checkpoints(o_.save_total_limit))
    log_->message(fmt::format("removed {} (--save-total-limit {})", old.string(), o_.save_total_limit));
}

void Trainer::save_final_model() {
  engine_->gather_weights();
  if (!main_rank()) return;
  // The output folder itself becomes a model folder, as with TRL (with LoRA: an adapter folder).
  if (const engine::LoraConfig* lora = engine_->lora()) {
    save_final_adapter(o_.out, *lora, engine_->master_weights(), o_.model.string(), tokenizer_dir_);
    if (o_.merge_adapter) {
      save_merged_model(o_.out / "merged", engine_->config(), engine_->base_weights(), *lora, engine_->master_weights(),
                        tokenizer_dir_);
      log_->message(fmt::format("merged model in {}", (o_.out / "merged").string()));
    }
    return;
  }
  trainer::save_final_model(o_.out, engine_->config(), engine_->master_weights(), tokenizer_dir_);
}

void Trainer::say(const std::string& line) {
  if (log_) log_->message(line);
}

int Trainer::agreed_stop_signal(int signal) {
  if (comm_->size() == 1) return signal;
  double value = main_rank() ? signal : 0;
  comm_->all_reduce_sum(&value, 1);
  return static_cast<int>(value);
}

int Trainer::run() {
  // Steps after the resumed checkpoint were logged by a run that did not
  // save them: they are done again, and logged again.
  if (main_rank() && !o_.resume_from_checkpoint.empty()) out_->cut_metrics_after(state_.global_step);
  if (main_rank()) log_ = std::make_unique<MetricsLog>(o_.out / "metrics.jsonl", total_steps_, o_.progress);
  if (main_rank() && o_.report_to == "tensorboard") {
    tensorboard_ = std::make_unique<TensorBoardWriter>(o_.out / "runs");
    // What a killed run logged after the checkpoint is dropped by TensorBoard too.
    if (!o_.resume_from_checkpoint.empty()) tensorboard_->restart(state_.global_step + 1);
  }
  say(fmt::format("duet train: {} train / {} eval examples, {} layout, pack_tokens {}, {} steps of {} examples",
                  train_.size(), eval_.size(), layout::layout_name(o_.layout), o_.pack_tokens, total_steps_,
                  o_.batch_size));
  if (comm_->size() > 1)
    say(fmt::format("data parallel: {} ranks over {}, ZeRO stage {}", comm_->size(), comm_->backend(), o_.zero_stage));
  say(fmt::format("data: {} (max_length {}, max_prompt_length {})", data_summary_, o_.max_length,
                            o_.effective_max_prompt_length()));
  if (const engine::LoraConfig* lora = engine_->lora()) {
    // As peft's print_trainable_parameters.
    const auto trainable = engine_->master_weights().values().size(), base = engine_->base_weights().values().size();
    say(fmt::format("LoRA r {} alpha {} (scaling {:g}) dropout {:g} on {}: trainable params {} || all params "
                    "{} || trainable% {:.4f}",
                    lora->r, lora->alpha, lora->scaling(), lora->dropout, fmt::join(lora->target_modules, ","),
                    trainable, trainable + base,
                    100.0 * static_cast<double>(trainable) / static_cast<double>(trainable + base)));
  }
  const LrSchedule schedule = make_schedule(o_, total_steps_);
  const StopSignals stop_signals;
  layout::StepCursor cursor(*batcher_, state_.position);
  const double steps_per_epoch = static_cast<double>(batcher_->steps_per_epoch());
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first_step = state_.global_step;
  int64_t examples_done = 0;
  double loss_sum = 0;
  // The steps since the last log: TRL logs their mean at --logging-steps.
  std::map<std::string, std::pair<double, int64_t>> window;  // key -> (sum, count)
  int64_t window_tokens = 0, window_examples = 0;
  double window_seconds = 0;

  while (state_.global_step < total_steps_) {
    const auto start = std::chrono::steady_clock::now();
    const layout::Step step = cursor.next();
    StepOutcome outcome = train_step(step);
    const int64_t step_number = state_.global_step + 1;
    const double lr = schedule.at(step_number);
    outcome.grad_norm = engine_->optimizer_step(lr);
    state_.global_step = step_number;
    state_.position = cursor.position();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    examples_done += step.num_examples;
    loss_sum += outcome.result.loss_mean;
    nlohmann::json step_metrics = metrics_record(outcome.result, "");
    step_metrics["grad_norm"] = outcome.grad_norm;
    for (const auto& [key, value] : step_metrics.items())
      if (value.is_number()) {
        window[key].first += value.get<double>();
        window[key].second += 1;
      }
    window_tokens += outcome.tokens;
    window_examples += step.num_examples;
    window_seconds += seconds;

    if (step_number % o_.logging_steps == 0 || step_number == total_steps_) {
      nlohmann::json record;
      for (const auto& [key, sum_count] : window) record[key] = sum_count.first / static_cast<double>(sum_count.second);
      record["step"] = step_number;
      record["epoch"] = static_cast<double>(step_number) / steps_per_epoch;
      record["learning_rate"] = lr;
      record["tokens_per_second"] = static_cast<double>(window_tokens) / window_seconds;
      record["examples_per_second"] = static_cast<double>(window_examples) / window_seconds;
      // GPU engines allocate nothing per step, so memory in use now is the run's peak.
      if (const double gib = engine_->device_memory_gib(); gib > 0) record["gpu_memory_gib"] = gib;
      if (log_) {
        log_->write(record);
        log_->show(step_number, record);
      }
      if (tensorboard_) tensorboard_->record(record);
      window.clear();
      window_tokens = window_examples = 0;
      window_seconds = 0;
    }
    const bool last = step_number == total_steps_;
    if (!eval_.empty() && ((o_.eval_steps > 0 && step_number % o_.eval_steps == 0) || last)) {
      nlohmann::json record = evaluate();
      record["step"] = step_number;
      if (log_) log_->write(record);
      if (tensorboard_) tensorboard_->record(record);
      say(fmt::format("eval at step {}: loss {:.4f}, accuracy {:.3f}", step_number,
                                record["eval_loss"].get<double>(), record.value("eval_rewards/accuracies", 0.0)));
    }
    if ((o_.save_steps > 0 && step_number % o_.save_steps == 0) || last) save_checkpoint_now();
    if (const int signal = agreed_stop_signal(g_stop_signal); signal != 0 && !last) {
      save_checkpoint_now();
      say(fmt::format("stopped by {}: resume with --resume-from-checkpoint {}", strsignal(signal),
                                (o_.out / fmt::format("checkpoint-{}", step_number)).string()));
      return 128 + signal;
    }
  }
  save_final_model();
  // The end-of-run summary, as transformers' Trainer writes it (train_results.json).
  const double runtime = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  const auto steps_run = static_cast<double>(state_.global_step - first_step);
  nlohmann::json summary = {{"train_runtime", runtime},
                            {"train_samples_per_second", static_cast<double>(examples_done) / runtime},
                            {"train_steps_per_second", steps_run / runtime},
                            {"train_loss", steps_run > 0 ? loss_sum / steps_run : 0.0},
                            {"epoch", static_cast<double>(state_.global_step) / steps_per_epoch},
                            {"global_step", state_.global_step}};
  if (main_rank()) write_json_atomically(o_.out / "train_results.json", summary);
  say(fmt::format("done: {} steps in {:.1f} s, train_loss {:.4f}, {:.2f} examples/s; model in {}",
                            state_.global_step - first_step, runtime, summary["train_loss"].get<double>(),
                            summary["train_samples_per_second"].get<double>(), o_.out.string()));
  return 0;
}

}  // namespace duet::trainer
