#include "engine/cpu_engine.hpp"
#include "util/error.hpp"
#ifdef DUET_WITH_CUDA
#include "engine/cuda_engine.hpp"
#endif

namespace duet::engine {

std::unique_ptr<Engine> make_engine(const EngineOptions& o) {
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
