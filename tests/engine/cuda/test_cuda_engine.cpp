// The CUDA engine against the fp32 CPU engine (the reference) on random tiny
// models of each family with head_dim 64, on one GPU (label cuda):
//   - per-response log-probs and every parameter's gradient, paired and
//     shared+packed rows, within bf16 tolerances stated below;
//   - recompute (gradient checkpointing) gives the same numbers as keeping
//     the activations (same kernels, same order: bitwise);
//   - 50 DPO steps on a learnable task: the CUDA loss curve follows the CPU
//     curve, paired and shared+packed curves agree, held-out accuracy matches;
//   - the host mirror round trip (checkpoint out, state back in) is exact;
//   - LoRA: adapter log-probs, the adapter-off reference and the adapter's
//     gradients (with and without dropout, whose mask both engines share)
//     match the CPU engine, and a LoRA DPO run follows the CPU curve;
//   - data parallel through NCCL with one rank gives the one-process run;
//   - ZeRO stage 1 with one rank (the shard in per-tensor pieces, AdamW piece
//     by piece) is stage 0 bit for bit, and its checkpoint resumes exactly;
//   - ZeRO stage 2 with one rank (the gradients staged layer by layer and
//     added into the shard during the backward) is stage 0 bit for bit but for
//     the last bits of the gradient norm's double sum, over several
//     micro-batches a step, and resumes from its own and stage 0's checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "common/seeds.hpp"
#include "dist/single_process.hpp"
#include "engine/cpu_engine.hpp"
#include "engine/cuda_engine.hpp"
#include "engine/lora.hpp"
#include "engine/sharded_adamw.hpp"
#ifdef DUET_WITH_NCCL
#include "dist/nccl_communicator.hpp"
#endif
#include "layout/pack_rows.hpp"
#include "loss/loss.hpp"
#include "model/config.hpp"
#include "tiny_models.hpp"
#include "trainer/checkpoint.hpp"
#include "trainer/optimizer_shards.hpp"
#include "trainer/sharded_checkpoint.hpp"

namespace duet::engine {
namespace {

namespace fs = std::filesystem;
using Key = std::pair<int64_t, int32_t>;  // (example, response)

// The engine tests' tiny families (llama3 RoPE, Qwen2 tied + biases, Mistral)
// widened to head_dim 64, which the attention kernels support: hidden 256 =
// 4 query heads of 64 (2 kv heads), two layers.
model::ModelConfig cuda_tiny_config(model::Architecture arch) {
  model::ModelConfig c = testing::tiny_config(arch);
  c.vocab_size = 512;
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.head_dim = 64;
  c.dtype = model::DType::F32;
  if (arch == model::Architecture::Mistral) c.sliding_window = 48;  // shorter than most rows
  return c;
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("duet_cuda_" + std::to_string(test::fresh_seed()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

// A model folder with random weights: matrices N(0, 0.06) (log-probs far from
// uniform at hidden 256), norms 1 + N(0, 0.2), biases N(0, 0.2).
fs::path write_model(const fs::path& dir, const model::ModelConfig& c, uint64_t seed) {
  fs::create_directories(dir);
  model::save_config(c, dir / "config.json");
  ParameterSet<float> p(c);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& s : p.slots()) {
    float* v = p.values().data() + s.offset;
    const bool norm = s.name.ends_with("norm.weight"), bias = s.name.ends_with(".bias");
    for (size_t i = 0; i < s.numel; ++i) v[i] = norm ? 1.0f + 0.2f * normal(rng) : (bias ? 0.2f : 0.06f) * normal(rng);
  }
  save_weights(p, dir / "model.safetensors", c.dtype);
  return dir;
}

// Options of a CUDA engine on a fresh random model folder of `config` in `tmp`.
EngineOptions cuda_options(const TempDir& tmp, const model::ModelConfig& config, std::mt19937_64& rng) {
  EngineOptions o;
  o.model = write_model(tmp.path / "model", config, rng());
  o.device = "cuda";
  return o;
}

std::vector<Batch> batches(const std::vector<layout::TokenizedExample>& ex, layout::Layout layout, int64_t pack) {
  std::vector<Batch> out;
  for (const auto& row : layout::pack_examples(ex, layout, pack, 0)) out.push_back(make_batch(row));
  return out;
}

// Per-response log-probs (the reference's too, scored first as the trainer
// does, when the engine has one), and the gradient of Σ_r w_r logp_r (fixed
// random weights w per response) accumulated over the batches.
struct Scored {
  std::map<Key, ResponseLogp> logp, ref;
  std::vector<float> grads;
};

Scored score_and_backprop(Engine& engine, const std::vector<Batch>& bs, const std::map<Key, double>& weight) {
  Scored s;
  engine.zero_grad();
  for (const auto& b : bs) {
    if (engine.has_reference())
      for (const auto& r : engine.score_reference(b)) s.ref[{r.example, r.response}] = r;
    std::vector<double> d;
    for (const auto& r : engine.score_policy(b)) {
      s.logp[{r.example, r.response}] = r;
      d.push_back(weight.at({r.example, r.response}));
    }
    engine.backprop(b, d);
  }
  const auto& g = engine.gradients();
  s.grads.assign(g.values().begin(), g.values().end());
  return s;
}

// A fixed random weight w_r per response (the gradient's direction in score_and_backprop).
std::map<Key, double> random_response_weights(std::mt19937_64& rng, const std::vector<layout::TokenizedExample>& ex) {
  std::map<Key, double> weight;
  std::normal_distribution<double> normal(0.0, 1.0);
  for (const auto& e : ex)
    for (size_t r = 0; r < e.responses.size(); ++r) weight[{e.index, static_cast<int32_t>(r)}] = normal(rng);
  return weight;
}

// The three families, named by model type, for every parameterised suite here.
const auto kFamilies = ::testing::Values(model::Architecture::Llama, model::Architecture::Qwen2,
                                         model::Architecture::Mistral);
std::string family_name(const ::testing::TestParamInfo<model::Architecture>& info) {
  return std::string(model::architecture_model_type(info.param));
}

// bf16 tolerances for log-prob sums. Each token's log-prob carries the bf16
// rounding of the activations that produce its logits (2^-9 relative at each
// of ~10 roundings per layer, partly cancelling): about 1e-2 nats per token
// for these random models, random-signed, so a sum of n tokens drifts by
// ~1e-2·√n. The bound allows 4× that plus 0.2% of the value (the logit scale).
double logp_tolerance(const ResponseLogp& ref) { return 0.04 * std::sqrt(ref.tokens) + 2e-3 * std::abs(ref.logp); }

// Per tensor: ‖g − g_ref‖ / ‖g_ref‖. bf16 backward through two layers lands
// near 1e-2; 6e-2 leaves room without admitting a wrong formula (off by O(1)).
constexpr double kGradTolerance = 6e-2;

void expect_close_logps(const std::map<Key, ResponseLogp>& got, const std::map<Key, ResponseLogp>& ref,
                        const char* what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double worst = 0;
  for (const auto& [k, r] : ref) {
    const auto& g = got.at(k);
    ASSERT_EQ(g.tokens, r.tokens);
    ASSERT_TRUE(std::isfinite(g.logp)) << what;
    worst = std::max(worst, std::abs(g.logp - r.logp) / logp_tolerance(r));
    EXPECT_NEAR(g.logp, r.logp, logp_tolerance(r)) << what << " example " << k.first << " response " << k.second;
  }
  std::printf("  %s: worst log-prob error %.3f of tolerance\n", what, worst);
}

void expect_close_grads(const ParameterSet<float>& layout, const std::vector<float>& got, const std::vector<float>& ref,
                        const char* what) {
  double worst = 0;
  std::string worst_name;
  for (const auto& s : layout.slots()) {
    double num = 0, den = 0;
    for (size_t i = s.offset; i < s.offset + s.numel; ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << what << " " << s.name;
      num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
      den += double(ref[i]) * ref[i];
    }
    const double rel = std::sqrt(num / std::max(den, 1e-300));
    if (rel > worst) worst = rel, worst_name = s.name;
    EXPECT_LE(rel, kGradTolerance) << what << " " << s.name;
  }
  std::printf("  %s: worst gradient error %.2e (%s)\n", what, worst, worst_name.c_str());
}

class CudaEngineFamilies : public ::testing::TestWithParam<model::Architecture> {};

TEST_P(CudaEngineFamilies, LogprobsAndGradientsMatchTheCpuEngine) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(GetParam());
  EngineOptions o;
  o.model = write_model(tmp.path / "model", config, rng());
  // Prompts and responses long enough that rows span several 64/128 tiles.
  const auto examples = testing::random_examples(rng, 12, config.vocab_size, 150, 90, 3);
  const std::map<Key, double> weight = random_response_weights(rng, examples);

  CpuEngine cpu(o);
  o.device = "cuda";
  CudaEngine gpu(o);
  const auto paired = batches(examples, layout::Layout::paired, 0);
  const auto shared = batches(examples, layout::Layout::shared, 1000);
  const Scored ref = score_and_backprop(cpu, paired, weight);
  const Scored gp = score_and_backprop(gpu, paired, weight);
  const Scored gs = score_and_backprop(gpu, shared, weight);
  expect_close_logps(gp.logp, ref.logp, "cuda paired vs cpu");
  expect_close_logps(gs.logp, ref.logp, "cuda shared+packed vs cpu");
  expect_close_grads(cpu.master_weights(), gp.grads, ref.grads, "cuda paired vs cpu");
  expect_close_grads(cpu.master_weights(), gs.grads, ref.grads, "cuda shared+packed vs cpu");

  // Recompute runs the same kernels in the same order: identical bits.
  o.gradient_checkpointing = true;
  CudaEngine recompute(o);
  const Scored gr = score_and_backprop(recompute, shared, weight);
  for (const auto& [k, r] : gs.logp) EXPECT_EQ(gr.logp.at(k).logp, r.logp);
  EXPECT_EQ(gr.grads, gs.grads);
}

INSTANTIATE_TEST_SUITE_P(Families, CudaEngineFamilies, kFamilies, family_name);

// Chosen responses use tokens 10..19, rejected ones 40..49, after a random
// prompt: DPO learns it, and held-out pairs tell whether it did.
std::vector<layout::TokenizedExample> task(std::mt19937_64& rng, int n) {
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<layout::TokenizedExample> out;
  for (int i = 0; i < n; ++i) {
    layout::TokenizedExample e;
    e.index = i;
    e.prompt.resize(static_cast<size_t>(uni(2, 40)));
    for (auto& t : e.prompt) t = static_cast<layout::TokenId>(uni(1, 511));
    e.responses.resize(2);
    e.responses[0].resize(static_cast<size_t>(uni(1, 24)));
    e.responses[1].resize(static_cast<size_t>(uni(1, 24)));
    for (auto& t : e.responses[0]) t = static_cast<layout::TokenId>(uni(10, 19));
    for (auto& t : e.responses[1]) t = static_cast<layout::TokenId>(uni(40, 49));
    out.push_back(std::move(e));
  }
  return out;
}

struct Curve {
  std::vector<double> loss;
  double held_out_accuracy = 0;
};

// DPO (sigmoid, beta 0.5) with the starting model as reference, AdamW at lr
// 2e-3, steps of 8 examples laid out as `layout`.
Curve train(Engine& engine, const std::vector<layout::TokenizedExample>& train_set,
            const std::vector<layout::TokenizedExample>& held_out, layout::Layout layout, int steps) {
  auto logps_of = [&](const std::vector<Batch>& bs, std::map<Key, double>& into) {
    for (const auto& b : bs)
      for (const auto& r : engine.score_policy(b)) into[{r.example, r.response}] = r.logp;
  };
  auto pairs_of = [](const std::vector<layout::TokenizedExample>& ex, const std::map<Key, double>& pol,
                     const std::map<Key, double>& ref) {
    std::vector<loss::PairLogps> p;
    for (const auto& e : ex)
      p.push_back({pol.at({e.index, 0}), pol.at({e.index, 1}), ref.at({e.index, 0}), ref.at({e.index, 1}),
                   static_cast<int64_t>(e.responses[0].size()), static_cast<int64_t>(e.responses[1].size())});
    return p;
  };
  const int64_t pack = layout == layout::Layout::paired ? 0 : 256;
  std::map<Key, double> ref_train, ref_held;
  logps_of(batches(train_set, layout::Layout::paired, 0), ref_train);
  logps_of(batches(held_out, layout::Layout::paired, 0), ref_held);
  loss::LossConfig cfg;
  cfg.beta = 0.5;
  loss::LossState state;
  Curve c;
  for (int s = 0; s < steps; ++s) {
    std::vector<layout::TokenizedExample> step;
    for (int i = 0; i < 8; ++i) step.push_back(train_set[static_cast<size_t>((s * 8 + i) % train_set.size())]);
    const auto bs = batches(step, layout, pack);
    std::map<Key, double> pol;
    logps_of(bs, pol);
    const auto result = loss::compute(cfg, pairs_of(step, pol, ref_train), state);
    c.loss.push_back(result.loss_mean);
    std::map<int64_t, size_t> pair_of;
    for (size_t i = 0; i < step.size(); ++i) pair_of[step[i].index] = i;
    engine.zero_grad();
    for (const auto& b : bs) {
      engine.score_policy(b);
      std::vector<double> d;
      for (const auto& r : b.responses) {
        const auto& pr = result.pairs[pair_of.at(r.example)];
        d.push_back(r.response == 0 ? pr.d_policy_chosen : pr.d_policy_rejected);
      }
      engine.backprop(b, d);
    }
    engine.optimizer_step(2e-3);
  }
  std::map<Key, double> pol;
  logps_of(batches(held_out, layout::Layout::paired, 0), pol);
  int right = 0;
  for (const auto& e : held_out) right += (pol.at({e.index, 0}) - ref_held.at({e.index, 0})) >
                                          (pol.at({e.index, 1}) - ref_held.at({e.index, 1}));
  c.held_out_accuracy = static_cast<double>(right) / static_cast<double>(held_out.size());
  return c;
}

TEST(CudaEngineTraining, FiftyStepsFollowTheCpuCurveInEveryLayout) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(model::Architecture::Llama);
  EngineOptions o;
  o.model = write_model(tmp.path / "model", config, rng());
  o.adamw.weight_decay = 0.0;
  const auto train_set = task(rng, 96), held_out = task(rng, 48);
  constexpr int kSteps = 50;
  CpuEngine cpu(o);
  const Curve ref = train(cpu, train_set, held_out, layout::Layout::paired, kSteps);
  o.device = "cuda";
  CudaEngine gpu_paired(o), gpu_shared(o);
  const Curve paired = train(gpu_paired, train_set, held_out, layout::Layout::paired, kSteps);
  const Curve shared = train(gpu_shared, train_set, held_out, layout::Layout::shared, kSteps);
  // Step 1: policy = reference, loss log 2 up to the bf16 noise of two forwards.
  EXPECT_NEAR(paired.loss.front(), std::log(2.0), 5e-3);
  // bf16 noise grows as training amplifies differences; 0.05 absolute on a
  // loss falling from 0.69 towards 0 separates noise from a wrong gradient
  // (a wrong one stalls or diverges by O(0.1-1) within a few steps).
  double cpu_gap = 0, layout_gap = 0;
  for (int s = 0; s < kSteps; ++s) {
    cpu_gap = std::max(cpu_gap, std::abs(paired.loss[s] - ref.loss[s]));
    layout_gap = std::max(layout_gap, std::abs(shared.loss[s] - paired.loss[s]));
  }
  std::printf("  loss: cpu %.4f -> %.4f, cuda paired -> %.4f, shared -> %.4f; max |cuda-cpu| %.2e, "
              "max |shared-paired| %.2e; held-out accuracy cpu %.3f cuda %.3f / %.3f\n",
              ref.loss.front(), ref.loss.back(), paired.loss.back(), shared.loss.back(), cpu_gap, layout_gap,
              ref.held_out_accuracy, paired.held_out_accuracy, shared.held_out_accuracy);
  EXPECT_LT(cpu_gap, 0.05);
  EXPECT_LT(layout_gap, 0.05);
  EXPECT_LT(paired.loss.back(), 0.3);
  EXPECT_GE(paired.held_out_accuracy, std::min(ref.held_out_accuracy, 0.95));
  EXPECT_GE(shared.held_out_accuracy, std::min(ref.held_out_accuracy, 0.95));
}

TEST(CudaEngineState, HostMirrorRoundTripIsExact) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(model::Architecture::Qwen2);
  const EngineOptions o = cuda_options(tmp, config, rng);
  CudaEngine a(o), b(o);
  const auto ex = testing::random_examples(rng, 6, config.vocab_size, 40, 30, 2);
  const auto bs = batches(ex, layout::Layout::shared, 200);
  for (int step = 0; step < 2; ++step) {
    a.zero_grad();
    for (const auto& batch : bs) {
      auto r = a.score_policy(batch);
      a.backprop(batch, std::vector<double>(r.size(), 0.1));
    }
    a.optimizer_step(1e-3);
  }
  // b takes a's state through the host mirrors, as a resume from a checkpoint does.
  std::copy(a.master_weights().values().begin(), a.master_weights().values().end(), b.master_weights().values().begin());
  auto copy = [](ParameterSet<float>& from, ParameterSet<float>& to) {
    std::copy(from.values().begin(), from.values().end(), to.values().begin());
  };
  copy(a.optimizer().first_moment(), b.optimizer().first_moment());
  copy(a.optimizer().second_moment(), b.optimizer().second_moment());
  b.optimizer().set_steps(a.optimizer().steps());
  b.state_changed();
  for (const auto& batch : bs) {
    const auto ra = a.score_policy(batch), rb = b.score_policy(batch);
    for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].logp, rb[i].logp);
  }
  EXPECT_EQ(b.optimizer().steps(), 2);
}

// A LoRA config over every linear layer, and an adapter whose B is not zero
// (PEFT's init leaves B = 0, which would hide a wrong forward).
LoraConfig all_linear(double dropout) {
  LoraConfig l;
  l.r = 8, l.alpha = 16, l.dropout = dropout;
  l.target_modules = parse_target_modules({"all-linear"});
  return l;
}

void random_adapter(ParameterSet<float>& adapter, uint64_t seed) {
  init_adapter(adapter, seed);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (const auto& s : adapter.slots())
    if (s.name.find("lora_B") != std::string::npos)
      for (size_t i = 0; i < s.numel; ++i) adapter.values()[s.offset + i] = normal(rng);
}

std::map<Key, ResponseLogp> reference_logps(Engine& engine, const std::vector<Batch>& bs) {
  std::map<Key, ResponseLogp> out;
  for (const auto& b : bs)
    for (const auto& r : engine.score_reference(b)) out[{r.example, r.response}] = r;
  return out;
}

class CudaLoraFamilies : public ::testing::TestWithParam<model::Architecture> {};

TEST_P(CudaLoraFamilies, AdapterLogprobsReferenceAndGradientsMatchTheCpuEngine) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(GetParam());
  const auto examples = testing::random_examples(rng, 10, config.vocab_size, 150, 90, 3);
  const std::map<Key, double> weight = random_response_weights(rng, examples);
  const auto paired = batches(examples, layout::Layout::paired, 0);
  const auto shared = batches(examples, layout::Layout::shared, 1000);
  const fs::path model = write_model(tmp.path / "model", config, rng());
  const uint64_t adapter_seed = rng();
  for (const double dropout : {0.0, 0.1}) {
    SCOPED_TRACE(dropout);
    EngineOptions o;
    o.model = model;
    o.lora = all_linear(dropout);
    o.lora_seed = 7;
    o.reference_is_base = true;
    CpuEngine cpu(o);
    o.device = "cuda";
    CudaEngine gpu(o);
    random_adapter(cpu.master_weights(), adapter_seed);
    random_adapter(gpu.master_weights(), adapter_seed);
    gpu.state_changed();
    cpu.set_training(dropout > 0), gpu.set_training(dropout > 0);
    // Each layout against the CPU engine on the same rows: with dropout the
    // mask depends on the batch, so paired and shared rows drop differently.
    const Scored ref = score_and_backprop(cpu, paired, weight), ref_s = score_and_backprop(cpu, shared, weight);
    const Scored gp = score_and_backprop(gpu, paired, weight);
    const Scored gs = score_and_backprop(gpu, shared, weight);
    expect_close_logps(gp.logp, ref.logp, "lora cuda paired vs cpu");
    expect_close_logps(gs.logp, ref_s.logp, "lora cuda shared+packed vs cpu");
    expect_close_grads(cpu.master_weights(), gp.grads, ref.grads, "lora cuda paired vs cpu");
    expect_close_grads(cpu.master_weights(), gs.grads, ref_s.grads, "lora cuda shared+packed vs cpu");
    // The adapter moves the log-probs well beyond the tolerance (else the comparison proves little) ...
    const auto base = reference_logps(cpu, paired);
    double moved = 0;
    for (const auto& [k, r] : ref.logp) moved = std::max(moved, std::abs(r.logp - base.at(k).logp) / logp_tolerance(r));
    EXPECT_GT(moved, 3.0);
    // ... and the reference is the base with the adapter off, on either engine.
    expect_close_logps(reference_logps(gpu, shared), base, "lora cuda reference (adapter off) vs cpu base");
  }
}

INSTANTIATE_TEST_SUITE_P(Families, CudaLoraFamilies, kFamilies, family_name);

TEST(CudaLoraTraining, ThirtyStepsFollowTheCpuCurve) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(model::Architecture::Llama);
  EngineOptions o;
  o.model = write_model(tmp.path / "model", config, rng());
  o.adamw.weight_decay = 0.0;
  o.lora = all_linear(0.0);
  o.lora->r = 16, o.lora->alpha = 32;
  o.lora_seed = rng();
  o.reference_is_base = true;
  const auto train_set = task(rng, 96), held_out = task(rng, 48);
  constexpr int kSteps = 30;
  CpuEngine cpu(o);
  const Curve ref = train(cpu, train_set, held_out, layout::Layout::paired, kSteps);
  o.device = "cuda";
  CudaEngine gpu(o);
  const Curve shared = train(gpu, train_set, held_out, layout::Layout::shared, kSteps);
  double gap = 0;
  for (int s = 0; s < kSteps; ++s) gap = std::max(gap, std::abs(shared.loss[s] - ref.loss[s]));
  std::printf("  lora loss: cpu %.4f -> %.4f, cuda shared+packed -> %.4f; max |cuda-cpu| %.2e; held-out accuracy "
              "cpu %.3f cuda %.3f\n",
              ref.loss.front(), ref.loss.back(), shared.loss.back(), gap, ref.held_out_accuracy,
              shared.held_out_accuracy);
  EXPECT_NEAR(shared.loss.front(), std::log(2.0), 5e-3);  // B = 0: the policy is the base
  EXPECT_LT(gap, 0.05);  // the full-model test's bound and reasoning
  EXPECT_LT(ref.loss.back(), 0.5);  // the adapter learns the task at all
  EXPECT_GE(shared.held_out_accuracy, std::min(ref.held_out_accuracy, 0.95));
}

// Tuning at reserve (docs/cuda-engine.md, "Matrix products") covers every
// product a step brings: rows of many lengths up to the reserved bound, the
// reference's forward, the policy's forward and backward, the optimizer;
// Qwen2 (the q/k/v bias epilogue, tied LM head) and a LoRA adapter with
// dropout (its thin products, dx in fp32 through the mask). None runs with
// an algorithm no tuning chose. Two candidates keep the timing short.
TEST(CudaEngineTuning, EveryProductOfAStepIsTuned) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  struct Env {
    Env() { setenv("DUET_GEMM_AUTOTUNE", "2", 1); }
    ~Env() { unsetenv("DUET_GEMM_AUTOTUNE"); }
  } env;
  for (const bool lora : {false, true}) {
    SCOPED_TRACE(lora ? "llama with LoRA" : "qwen2");
    const auto config = cuda_tiny_config(lora ? model::Architecture::Llama : model::Architecture::Qwen2);
    EngineOptions o;
    o.device = "cuda";
    o.model = write_model(tmp.path / (lora ? "llama" : "qwen2"), config, rng());
    if (lora) {
      o.lora = all_linear(0.1);
      o.lora_seed = rng(), o.reference_is_base = true;
    } else {
      o.reference = o.model;
    }
    const auto examples = testing::random_examples(rng, 16, config.vocab_size, 150, 90, 3);
    std::vector<Batch> rows = batches(examples, layout::Layout::paired, 0);
    for (int64_t pack : {450, 1000})  // examples are up to 150 + 3 × 90 = 420 tokens
      for (auto& b : batches(examples, layout::Layout::shared, pack)) rows.push_back(std::move(b));
    int64_t tokens = 0, targets = 0;
    for (const Batch& b : rows)
      tokens = std::max(tokens, b.n_tokens() - b.padding), targets = std::max(targets, b.n_targets());
    CudaEngine engine(o);
    engine.set_training(true);
    engine.reserve(tokens, targets);
    const std::string algorithms = engine.product_algorithms();
    EXPECT_GT(std::count(algorithms.begin(), algorithms.end(), '\n'), 20) << algorithms;
    score_and_backprop(engine, rows, random_response_weights(rng, examples));
    engine.optimizer_step(1e-3);
    EXPECT_EQ(engine.untuned_products(), 0);
    EXPECT_EQ(engine.product_algorithms(), algorithms);  // nothing tuned after reserve
  }
}

#ifdef DUET_WITH_NCCL
// The data-parallel step (NCCL all-reduce of the gradients on the device)
// with one rank: the one-process numbers, bit for bit (a sum over one rank
// copies). Also when the step's last backprop is marked, so that it sums
// each layer on NCCL's stream as the backward leaves it and the step sums
// the rest, and when a rank's last pass is an empty one (it sums what its
// earlier backprops accumulated, layer by layer). Several ranks need
// several GPUs: the scaling work.
TEST(CudaEngineDataParallel, OneNcclRankGivesTheOneProcessRun) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(model::Architecture::Llama);
  EngineOptions o;
  o.model = write_model(tmp.path / "model", config, rng());
  o.device = "cuda";
  dist::Launch one;
  dist::NcclCommunicator comm(one, nullptr, 60);
  CudaEngine alone(o), ranked(o), marked(o), marked_empty(o);
  for (CudaEngine* e : {&ranked, &marked, &marked_empty}) e->enable_data_parallel(comm, 0);
  EXPECT_THROW(CudaEngine(o).enable_data_parallel(comm, 1), Error);  // not the stage it was built for
  const auto ex = testing::random_examples(rng, 8, config.vocab_size, 60, 30, 2);
  const auto bs = batches(ex, layout::Layout::shared, 200);
  ASSERT_GT(bs.size(), 1u);  // several backprops a step, the last one marked
  const std::map<Key, double> weight = random_response_weights(rng, ex);
  // As score_and_backprop, marking the last backprop, or adding a marked empty one.
  auto step_of = [&](CudaEngine& e, bool empty_last) {
    e.zero_grad();
    for (size_t i = 0; i < bs.size(); ++i) {
      std::vector<double> d;
      for (const auto& r : e.score_policy(bs[i])) d.push_back(weight.at({r.example, r.response}));
      if (i + 1 == bs.size() && !empty_last) e.mark_last_backprop();
      e.backprop(bs[i], d);
    }
    if (empty_last) {
      e.mark_last_backprop();
      e.backprop_empty();
    }
    const auto& g = e.gradients();
    return std::vector<float>(g.values().begin(), g.values().end());
  };
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const Scored a = score_and_backprop(alone, bs, weight), b = score_and_backprop(ranked, bs, weight);
    EXPECT_EQ(a.grads, b.grads);
    EXPECT_EQ(step_of(marked, false), a.grads);
    EXPECT_EQ(step_of(marked_empty, true), a.grads);
    const double norm = alone.optimizer_step(1e-3);
    for (CudaEngine* e : {&ranked, &marked, &marked_empty}) EXPECT_EQ(e->optimizer_step(1e-3), norm);
  }
  const auto& a = alone.master_weights().values();
  for (CudaEngine* e : {&ranked, &marked, &marked_empty}) {
    const auto& b = e->master_weights().values();
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  }
  marked.zero_grad();  // a backprop after the marked one is refused
  const auto scores = marked.score_policy(bs[0]);
  marked.mark_last_backprop();
  marked.backprop(bs[0], std::vector<double>(scores.size(), 1.0));
  const auto next = marked.score_policy(bs[1]);
  EXPECT_THROW(marked.backprop(bs[1], std::vector<double>(next.size(), 1.0)), Error);
}

#endif

bool same(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// One step of `engines` on the same batches: every engine's log-probs,
// gradients and gradient norm must be the first's, bit for bit (the norm
// within `norm_tolerance`, relative, when it is not 0).
void expect_identical_step(const std::vector<Engine*>& engines, const std::vector<Batch>& bs,
                           const std::map<Key, double>& weight, int step, double norm_tolerance = 0) {
  SCOPED_TRACE(::testing::Message() << "step " << step);
  const Scored first = score_and_backprop(*engines[0], bs, weight);
  const double norm = engines[0]->optimizer_step(1e-3);
  for (size_t e = 1; e < engines.size(); ++e) {
    const Scored other = score_and_backprop(*engines[e], bs, weight);
    for (const auto& [k, r] : first.logp) EXPECT_EQ(other.logp.at(k).logp, r.logp) << "engine " << e;
    ASSERT_EQ(other.ref.size(), first.ref.size()) << "engine " << e;
    for (const auto& [k, r] : first.ref) EXPECT_EQ(other.ref.at(k).logp, r.logp) << "engine " << e;
    EXPECT_EQ(other.grads, first.grads) << "engine " << e;
    if (norm_tolerance == 0)
      EXPECT_EQ(engines[e]->optimizer_step(1e-3), norm) << "engine " << e;
    else
      EXPECT_NEAR(engines[e]->optimizer_step(1e-3), norm, norm_tolerance * norm) << "engine " << e;
  }
}

// ZeRO stage 1, 2 or 3 with one rank over `comm`: the shard is the whole
// parameter set, cut into one piece per tensor, the AdamW kernel run once per
// piece with its tensor's decay flag. Stage 1: same kernels on the same
// elements with the same norm: stage 0's numbers, bit for bit, over three
// steps. Stage 2: each layer's gradients are made by the same kernels into a
// zeroed staging buffer, then added into the shard (a reduce over one rank
// leaves them as they are): stage 0 adds each micro-batch's product to the
// running sum inside the same product (fl(sum + p) either way), and the
// embedding, final norm and LM head accumulate in their staging exactly as in
// stage 0's buffer, so the gradients are stage 0's bit for bit over several
// micro-batches a step. Only the norm differs: Σ g² in double over the
// compact host-order shard instead of the padded device buffer (other partial
// sums), within 1e-12 relative; the fp32 clip factor it gives is the same
// unless it sits within that of a rounding boundary, so weights and moments
// are expected bit for bit too. Stage 3: stage 2 with the bf16 weights
// copied from the shard into a gathered layer's buffer before each layer (and
// the reference, the starting weights, likewise): the same values. Its checkpoint (the trainer's shard files)
// holds stage 0's state, and an engine of the stage resumed from it, or from
// stage 0's one-process checkpoint, takes the next step as the uninterrupted
// engines do.
void expect_sharded_is_stage_zero(dist::Communicator& comm, int stage) {
  SCOPED_TRACE(::testing::Message() << "ZeRO stage " << stage);
  const double norm_tolerance = stage >= 2 ? 1e-12 : 0;
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(model::Architecture::Qwen2);  // biases and norms: pieces that do not decay
  EngineOptions o;
  o.model = write_model(tmp.path / "model", config, rng());
  o.device = "cuda";
  o.adamw.weight_decay = 0.1;
  o.adamw.max_grad_norm = 0.05;  // small: the clip factor (read on the device by every piece) is likely below 1
  o.reference_is_start = true;    // scored before each micro-batch: stage 3 gathers it into the policy's buffers
  EngineOptions o1 = o;
  o1.zero_stage = stage;
  CudaEngine alone(o), zero(o1);
  zero.enable_data_parallel(comm, stage);
  ASSERT_NE(zero.sharded_optimizer(), nullptr);
  EXPECT_THROW(zero.optimizer(), Error);  // the state is the shard's
  const auto ex = testing::random_examples(rng, 8, config.vocab_size, 60, 30, 2);
  const auto bs = batches(ex, layout::Layout::shared, 200);  // a unit is at most 121 tokens
  ASSERT_GT(bs.size(), 1u);  // several micro-batches a step: the gradients accumulate
  const std::map<Key, double> weight = random_response_weights(rng, ex);
  for (int step = 0; step < 3; ++step) expect_identical_step({&alone, &zero}, bs, weight, step, norm_tolerance);

  zero.gather_weights();
  ShardedAdamW& shard = *zero.sharded_optimizer();
  const auto total = alone.master_weights().values().size();
  ASSERT_EQ(shard.shard_begin(), 0u);
  ASSERT_EQ(shard.shard_end(), total);
  EXPECT_TRUE(same(zero.master_weights().values(), alone.master_weights().values()));
  EXPECT_TRUE(same(shard.exp_avg(), alone.optimizer().first_moment().values()));
  EXPECT_TRUE(same(shard.exp_avg_sq(), alone.optimizer().second_moment().values()));
  EXPECT_EQ(shard.steps(), alone.optimizer().steps());

  // Checkpoints as duet train writes them: the shard files, stage 0's optimizer.safetensors.
  trainer::TrainerState state;
  state.global_step = 3;
  const fs::path sharded_dir = tmp.path / "checkpoint-zero1", whole_dir = tmp.path / "checkpoint-zero0";
  trainer::save_sharded_checkpoint(comm, zero, sharded_dir, state, {});
  trainer::save_checkpoint(whole_dir, {config, alone.master_weights(), &alone.optimizer(), &state, {}, nullptr, {}});
  EXPECT_TRUE(fs::exists(sharded_dir / trainer::optimizer_shard_file(0, 1)));
  std::vector<float> master(total), m(total), v(total);
  trainer::read_optimizer_range(sharded_dir, 1, shard.slots(), {0, master, m, v});
  EXPECT_TRUE(same(master, alone.master_weights().values()));
  EXPECT_TRUE(same(m, alone.optimizer().first_moment().values()));
  EXPECT_TRUE(same(v, alone.optimizer().second_moment().values()));

  CudaEngine from_sharded(o1), from_whole(o1);
  from_sharded.enable_data_parallel(comm, stage);
  from_whole.enable_data_parallel(comm, stage);
  EXPECT_EQ(trainer::load_sharded_checkpoint(sharded_dir, from_sharded).global_step, 3);
  EXPECT_EQ(trainer::load_sharded_checkpoint(whole_dir, from_whole).global_step, 3);
  from_sharded.state_changed();  // what Trainer::resume does next
  from_whole.state_changed();
  EXPECT_EQ(from_sharded.sharded_optimizer()->steps(), 3);
  expect_identical_step({&alone, &zero, &from_sharded, &from_whole}, bs, weight, 3, norm_tolerance);
  for (CudaEngine* e : {&zero, &from_sharded, &from_whole}) {
    e->gather_weights();
    EXPECT_TRUE(same(e->master_weights().values(), alone.master_weights().values()));
    EXPECT_TRUE(same(e->sharded_optimizer()->exp_avg_sq(), alone.optimizer().second_moment().values()));
  }
}

TEST(CudaEngineZeroOne, OneProcessIsStageZeroAndResumesFromItsCheckpoint) {
  dist::SingleProcessCommunicator comm;  // what duet train --zero-stage 1 uses with one process
  expect_sharded_is_stage_zero(comm, 1);
}

#ifdef DUET_WITH_NCCL
TEST(CudaEngineZeroOne, OneNcclRankIsStageZeroAndResumesFromItsCheckpoint) {
  dist::Launch one;
  dist::NcclCommunicator comm(one, nullptr, 60);  // the broadcasts of pieces (one group) and shards on the device
  expect_sharded_is_stage_zero(comm, 1);
}
#endif

TEST(CudaEngineZeroTwo, OneProcessIsStageZeroAndResumesFromCheckpoints) {
  dist::SingleProcessCommunicator comm;  // the adds on the compute stream, nothing reduced
  expect_sharded_is_stage_zero(comm, 2);
}

TEST(CudaEngineZeroThree, OneProcessIsStageZeroAndResumesFromCheckpoints) {
  dist::SingleProcessCommunicator comm;  // the shard's pieces copied into the layer buffers on the compute stream
  expect_sharded_is_stage_zero(comm, 3);
}

#ifdef DUET_WITH_NCCL
TEST(CudaEngineZeroTwo, OneNcclRankIsStageZeroAndResumesFromCheckpoints) {
  dist::Launch one;
  dist::NcclCommunicator comm(one, nullptr, 60);  // each layer reduced on NCCL's stream during the backward
  expect_sharded_is_stage_zero(comm, 2);
}

TEST(CudaEngineZeroThree, OneNcclRankIsStageZeroAndResumesFromCheckpoints) {
  dist::Launch one;
  dist::NcclCommunicator comm(one, nullptr, 60);  // each layer gathered on NCCL's stream, the next one prefetched
  expect_sharded_is_stage_zero(comm, 3);
}

// A rank without a row runs the others' collective passes without rows
// (Engine::score_empty, backprop_empty: ZeRO-3's gathers, ZeRO-2/3's reduces
// of zeros): with one rank, empty passes between the real ones change no
// score and no gradient. The empty reference passes between a policy's
// forward and its backward leave the reference's layers in the buffers, so
// the backward must gather the policy's again (stage 3).
void expect_empty_passes_change_nothing(int stage) {
  SCOPED_TRACE(::testing::Message() << "ZeRO stage " << stage);
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(model::Architecture::Mistral);
  EngineOptions o;
  o.model = write_model(tmp.path / "model", config, rng());
  o.reference = write_model(tmp.path / "reference", config, rng());
  o.device = "cuda";
  o.zero_stage = stage;
  dist::Launch one;
  dist::NcclCommunicator comm(one, nullptr, 60);
  CudaEngine plain(o), padded(o);
  plain.enable_data_parallel(comm, stage);
  padded.enable_data_parallel(comm, stage);
  const auto ex = testing::random_examples(rng, 6, config.vocab_size, 60, 30, 2);
  const auto bs = batches(ex, layout::Layout::shared, 200);
  const std::map<Key, double> weight = random_response_weights(rng, ex);
  const Scored a = score_and_backprop(plain, bs, weight);
  padded.zero_grad();
  padded.backprop_empty();
  for (const auto& b : bs) {
    padded.score_empty(false);
    for (const auto& r : padded.score_reference(b))
      EXPECT_EQ(r.logp, a.ref.at({r.example, r.response}).logp);
    std::vector<double> d;
    for (const auto& r : padded.score_policy(b)) {
      EXPECT_EQ(r.logp, a.logp.at({r.example, r.response}).logp);
      d.push_back(weight.at({r.example, r.response}));
    }
    padded.score_empty(true);
    padded.backprop(b, d);
    padded.backprop_empty();
  }
  const auto& g = padded.gradients();
  EXPECT_TRUE(std::equal(a.grads.begin(), a.grads.end(), g.values().begin()));
  const auto again = padded.score_policy(bs[0]);
  EXPECT_THROW(padded.backprop(bs[0], std::vector<double>(again.size(), 0.0)), Error);  // the step's gradient is reduced
  EXPECT_EQ(plain.optimizer_step(1e-3), padded.optimizer_step(1e-3));
  const Scored after = score_and_backprop(plain, bs, weight), padded_after = score_and_backprop(padded, bs, weight);
  for (const auto& [k, r] : after.logp) EXPECT_EQ(padded_after.logp.at(k).logp, r.logp);
}

TEST(CudaEngineZeroTwo, EmptyPassesChangeNothing) { expect_empty_passes_change_nothing(2); }
TEST(CudaEngineZeroThree, EmptyPassesChangeNothing) { expect_empty_passes_change_nothing(3); }
#endif

#ifdef DUET_WITH_NCCL
// LoRA with ranks (ZeRO stage 0): the adapter's gradients are all-reduced
// before the step; with one NCCL rank the sum copies, so the run is the one
// process's bit for bit (log-probs, gradients, norms, the adapter after three
// steps). Several ranks need several GPUs.
TEST(CudaEngineDataParallel, LoraOnOneNcclRankGivesTheOneProcessRun) {
  DUET_SEEDED_RNG(rng);
  TempDir tmp;
  const auto config = cuda_tiny_config(model::Architecture::Llama);
  EngineOptions o = cuda_options(tmp, config, rng);
  o.lora = all_linear(0.1);
  o.lora_seed = rng(), o.reference_is_base = true;
  dist::Launch one;
  dist::NcclCommunicator comm(one, nullptr, 60);
  CudaEngine alone(o), ranked(o);
  ranked.enable_data_parallel(comm, 0);
  for (CudaEngine* e : {&alone, &ranked}) e->set_training(true);
  const auto ex = testing::random_examples(rng, 8, config.vocab_size, 60, 30, 2);
  const auto bs = batches(ex, layout::Layout::shared, 200);
  const std::map<Key, double> weight = random_response_weights(rng, ex);
  for (int step = 0; step < 3; ++step) expect_identical_step({&alone, &ranked}, bs, weight, step);
  EXPECT_TRUE(same(alone.master_weights().values(), ranked.master_weights().values()));
}
#endif

}  // namespace
}  // namespace duet::engine
