#pragma once
// The communicator a run uses, from how it was launched and its device:
// one rank -> SingleProcessCommunicator; the CPU engine -> MPI (the job must
// be an MPI job: mpirun, or srun --mpi=pmix); the CUDA engine -> NCCL, its id
// carried by MPI in an MPI job, else by TCP at MASTER_ADDR:MASTER_PORT
// (torchrun). Collectives time out after `timeout_seconds`.
#include <memory>
#include <string>

#include "dist/communicator.hpp"
#include "dist/launch.hpp"

namespace duet::dist {

std::unique_ptr<Communicator> make_communicator(const Launch& launch, const std::string& device,
                                                double timeout_seconds);

}  // namespace duet::dist
