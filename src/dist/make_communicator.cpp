#include "dist/make_communicator.hpp"

#include <cstdlib>

#include "dist/single_process.hpp"
#include "dist/watchdog.hpp"
#include "util/error.hpp"
#ifdef DUET_WITH_MPI
#include "dist/mpi_communicator.hpp"
#endif
#ifdef DUET_WITH_NCCL
#include "dist/nccl_communicator.hpp"
#endif

namespace duet::dist {

namespace {

// An MPI world exists when mpirun started us, or srun with a PMI plugin.
bool in_mpi_job(const Launch& launch) {
  if (launch.launcher == Launcher::mpirun) return true;
  return launch.launcher == Launcher::srun && (std::getenv("PMIX_RANK") || std::getenv("PMI_RANK"));
}

#ifdef DUET_WITH_MPI
std::unique_ptr<Communicator> open_mpi(const Launch& launch) {
  auto mpi = std::make_unique<MpiCommunicator>();
  if (mpi->size() != launch.size || mpi->rank() != launch.rank)
    fail("MPI sees rank {} of {}, but {} started rank {} of {}: with srun give --mpi=pmix", mpi->rank(), mpi->size(),
         launcher_name(launch.launcher), launch.rank, launch.size);
  return mpi;
}
#endif

}  // namespace

std::unique_ptr<Communicator> make_communicator(const Launch& launch, const std::string& device,
                                                double timeout_seconds) {
  if (launch.size == 1) return std::make_unique<SingleProcessCommunicator>();
  if (device == "cpu") {
    if (!in_mpi_job(launch))
      fail("{} started {} ranks, but the CPU engine's collectives run over MPI: launch with mpirun -np {} (or srun "
           "--mpi=pmix)",
           launcher_name(launch.launcher), launch.size, launch.size);
#ifdef DUET_WITH_MPI
    return std::make_unique<WatchedCommunicator>(open_mpi(launch), timeout_seconds);
#else
    fail("this build has no MPI (configure found none): install libopenmpi-dev and rebuild to run {} CPU ranks",
         launch.size);
#endif
  }
  if (device == "cuda") {
#ifdef DUET_WITH_NCCL
    std::unique_ptr<Communicator> id_channel;
#ifdef DUET_WITH_MPI
    if (in_mpi_job(launch)) id_channel = open_mpi(launch);
#endif
    return std::make_unique<NcclCommunicator>(launch, std::move(id_channel), timeout_seconds);
#else
    fail("this build has no NCCL (configure found no nccl.h and libnccl): rebuild with NCCL to run {} GPU ranks",
         launch.size);
#endif
  }
  fail("--device {}: unknown device (cpu or cuda)", device);
}

}  // namespace duet::dist
