#include "engine/cpu_engine.hpp"

#include <string>
#include "util/error.hpp"
#ifdef DUET_WITH_CUDA
#include "engine/cuda_engine.hpp"
#endif

namespace duet::engine {

std::string resolve_device(const std::string& device, const std::string& precision) {
  if (device != "auto") return device;
  if (precision == "fp32") return "cpu";
  if (cuda_engine_runs_here()) return "cuda";
  if (precision == "bf16")
    fail("--bf16 needs the cuda engine, but no GPU it runs on is visible here (it needs a Hopper GPU: H100, H200); "
         "leave --bf16 out to train in fp32 on the CPU");
  return "cpu";
}

#ifndef DUET_WITH_CUDA
bool cuda_engine_runs_here() { return false; }
#endif

std::unique_ptr<Engine> make_engine(const EngineOptions& options) {
  EngineOptions o = options;
  o.device = resolve_device(options.device);
  if (o.device == "cpu") return std::make_unique<CpuEngine>(o);
#ifdef DUET_WITH_CUDA
  if (o.device == "cuda") return std::make_unique<CudaEngine>(o);
  fail("--device {}: unknown device (cpu or cuda)", o.device);
#else
  if (o.device == "cuda")
    fail("--device cuda: this build has no CUDA engine (nvcc was not found at configure time); rebuild on a machine "
         "with the CUDA toolkit, or use --device cpu");
  fail("--device {}: unknown device (cpu, or cuda in a CUDA build)", o.device);
#endif
}

}  // namespace duet::engine
