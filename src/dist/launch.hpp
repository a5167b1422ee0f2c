#pragma once
// Which launcher started this process and where it sits in the job, from the
// environment each launcher sets: mpirun (OpenMPI's OMPI_COMM_WORLD_*), srun
// (SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID inside a job step), or
// torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). None of
// them: one process.
#include <functional>
#include <string>

namespace duet::dist {

enum class Launcher { single, mpirun, srun, torchrun };
const char* launcher_name(Launcher launcher);

struct Launch {
  Launcher launcher = Launcher::single;
  int rank = 0, size = 1;
  int local_rank = 0;        // the GPU this rank uses
  std::string master_addr;   // where rank 0 listens for the NCCL id without MPI
  int master_port = 0;       //   (torchrun's variables; srun users may set them;
                             //   MASTER_PORT + 1 when torchrun's agent serves MASTER_PORT)
};

// Reads the variables through `getenv` (tests pass their own). duet::fail
// with one line naming the variable when one is malformed, missing beside
// its partners, or out of range.
using GetEnv = std::function<const char*(const char*)>;
Launch detect_launch(const GetEnv& getenv);
Launch detect_launch();  // the process's environment

// duet::fail when a launcher started several copies of `command` (a
// sub-command that is not data parallel: each copy would write the same output).
void require_one_process(const char* command);

}  // namespace duet::dist
