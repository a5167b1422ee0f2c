#include <cstdlib>
#include <string>

#include "engine/cpu_engine.hpp"
#include "util/error.hpp"
#ifdef DUET_WITH_CUDA
#include "engine/cuda_engine.hpp"
#endif

namespace duet::engine {

std::unique_ptr<Engine> make_engine(const EngineOptions& o) {
  if (o.device == "cpu") return std::make_unique<CpuEngine>(o);
#ifdef DUET_WITH_CUDA
  // The CUDA engine's LoRA passed its family tests on a GPU (log-probs, the
  // adapter-off reference, gradients) but not yet its training test and the
  // comparison with peft: until it has, only on request.
  const char* gate = std::getenv("DUET_CUDA_LORA");
  if (o.lora && o.device == "cuda" && !(gate && std::string(gate) == "1"))
    fail("--use-peft with --device cuda: LoRA on the CUDA engine has passed its gradient tests on a GPU but not yet its "
         "training test (set DUET_CUDA_LORA=1 to use it); or use --device cpu");
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
