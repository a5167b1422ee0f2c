// Launch detection: each launcher's variables give rank, size and local rank;
// malformed or inconsistent ones fail with one line naming the variable.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "dist/launch.hpp"
#include "util/error.hpp"

namespace duet::dist {
namespace {

Launch detect(const std::map<std::string, std::string>& env) {
  return detect_launch([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& env) {
  try {
    detect(env);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Launch, NoLauncherIsOneProcess) {
  const Launch l = detect({});
  EXPECT_EQ(l.launcher, Launcher::single);
  EXPECT_EQ(l.size, 1);
  EXPECT_EQ(l.rank, 0);
}

TEST(Launch, Mpirun) {
  const Launch l = detect({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                           {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"RANK", "0"}, {"WORLD_SIZE", "9"}});
  EXPECT_EQ(l.launcher, Launcher::mpirun);  // mpirun's variables win over stray torchrun ones
  EXPECT_EQ(l.rank, 2);
  EXPECT_EQ(l.size, 4);
  EXPECT_EQ(l.local_rank, 1);
}

TEST(Launch, SrunNeedsAJobStep) {
  const Launch step = detect({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "3"}, {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(step.launcher, Launcher::srun);
  EXPECT_EQ(step.rank, 3);
  EXPECT_EQ(step.size, 8);
  EXPECT_EQ(step.local_rank, 3);
  // A step of 2 tasks inside a job of 8.
  EXPECT_EQ(detect({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "8"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_STEP_ID", "3"}})
                .size,
            2);
  // The batch script itself (no step) is one process, not rank 0 of 8.
  EXPECT_EQ(detect({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}}).launcher, Launcher::single);
}

TEST(Launch, Torchrun) {
  const Launch l = detect({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                           {"MASTER_PORT", "29500"}});
  EXPECT_EQ(l.launcher, Launcher::torchrun);
  EXPECT_EQ(l.rank, 1);
  EXPECT_EQ(l.size, 2);
  EXPECT_EQ(l.local_rank, 1);
  EXPECT_EQ(l.master_addr, "node7");
  EXPECT_EQ(l.master_port, 29500);
}

TEST(Launch, TorchrunAgentKeepsMasterPort) {
  // torchrun's agent serves its store on MASTER_PORT: duet listens one above.
  const Launch l = detect({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "n"}, {"MASTER_PORT", "29500"},
                           {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  EXPECT_EQ(l.master_port, 29501);
}

TEST(Launch, BadVariablesNameThemselves) {
  EXPECT_NE(error_of({{"RANK", "1"}}).find("WORLD_SIZE is not set"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x'"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("not below the world size 2"), std::string::npos);
  EXPECT_NE(error_of({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "0"}}).find("OMPI_COMM_WORLD_SIZE='0'"),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT=70000"),
            std::string::npos);
}

}  // namespace
}  // namespace duet::dist
