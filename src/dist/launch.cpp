#include "dist/launch.hpp"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include "util/error.hpp"

namespace duet::dist {

namespace {

int parse_int(const char* name, const char* text, int min) {
  std::string_view s(text);
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < min)
    fail("environment variable {}='{}': expected an integer >= {} (set by the launcher; check the launch command)",
         name, s, min);
  return value;
}

// The value of `name`, or fail naming the launcher that needs it.
const char* required(const GetEnv& getenv, const char* name, const char* launcher) {
  const char* v = getenv(name);
  if (!v || !*v) fail("environment variable {} is not set, but the {} variables are: launch with {} or unset them",
                      name, launcher, launcher);
  return v;
}

void check_rank(const Launch& l, const char* rank_name) {
  if (l.rank >= l.size)
    fail("environment variable {}={} is not below the world size {}", rank_name, l.rank, l.size);
}

}  // namespace

const char* launcher_name(Launcher launcher) {
  switch (launcher) {
    case Launcher::single: return "single process";
    case Launcher::mpirun: return "mpirun";
    case Launcher::srun: return "srun";
    case Launcher::torchrun: return "torchrun";
  }
  return "?";
}

Launch detect_launch(const GetEnv& getenv) {
  Launch l;
  const auto has = [&](const char* name) { return getenv(name) != nullptr && *getenv(name) != 0; };
  if (has("OMPI_COMM_WORLD_RANK")) {
    l.launcher = Launcher::mpirun;
    l.rank = parse_int("OMPI_COMM_WORLD_RANK", getenv("OMPI_COMM_WORLD_RANK"), 0);
    l.size = parse_int("OMPI_COMM_WORLD_SIZE", required(getenv, "OMPI_COMM_WORLD_SIZE", "mpirun"), 1);
    l.local_rank = has("OMPI_COMM_WORLD_LOCAL_RANK")
                       ? parse_int("OMPI_COMM_WORLD_LOCAL_RANK", getenv("OMPI_COMM_WORLD_LOCAL_RANK"), 0)
                       : 0;
    check_rank(l, "OMPI_COMM_WORLD_RANK");
  } else if (has("SLURM_PROCID") && has("SLURM_STEP_ID")) {
    // SLURM_STEP_ID: inside an srun job step, not the batch script itself
    // (which also has SLURM_PROCID=0 and the job's SLURM_NTASKS).
    l.launcher = Launcher::srun;
    l.rank = parse_int("SLURM_PROCID", getenv("SLURM_PROCID"), 0);
    // The step's task count (srun -n) over the job's, which may be larger.
    l.size = has("SLURM_STEP_NUM_TASKS")
                 ? parse_int("SLURM_STEP_NUM_TASKS", getenv("SLURM_STEP_NUM_TASKS"), 1)
                 : parse_int("SLURM_NTASKS", required(getenv, "SLURM_NTASKS", "srun"), 1);
    l.local_rank = has("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", getenv("SLURM_LOCALID"), 0) : 0;
    check_rank(l, "SLURM_PROCID");
  } else if (has("RANK") || has("WORLD_SIZE")) {
    l.launcher = Launcher::torchrun;
    l.rank = parse_int("RANK", required(getenv, "RANK", "torchrun"), 0);
    l.size = parse_int("WORLD_SIZE", required(getenv, "WORLD_SIZE", "torchrun"), 1);
    l.local_rank = has("LOCAL_RANK") ? parse_int("LOCAL_RANK", getenv("LOCAL_RANK"), 0) : 0;
    check_rank(l, "RANK");
  } else {
    return l;
  }
  // The TCP rendezvous point (torchrun always sets it; optional elsewhere).
  if (has("MASTER_ADDR")) l.master_addr = getenv("MASTER_ADDR");
  if (has("MASTER_PORT")) {
    l.master_port = parse_int("MASTER_PORT", getenv("MASTER_PORT"), 1);
    if (l.master_port > 65535) fail("environment variable MASTER_PORT={}: not a TCP port (1-65535)", l.master_port);
    // torchrun's agent already serves its own store on MASTER_PORT (and tells
    // the workers so): duet's exchange then listens one port above.
    const char* agent_store = getenv("TORCHELASTIC_USE_AGENT_STORE");
    if (l.launcher == Launcher::torchrun && agent_store && std::string_view(agent_store) == "True") {
      if (l.master_port == 65535) fail("environment variable MASTER_PORT=65535: duet needs the port above it free");
      l.master_port += 1;
    }
  }
  return l;
}

Launch detect_launch() {
  return detect_launch([](const char* name) { return std::getenv(name); });
}

void require_one_process(const char* command) {
  const Launch l = detect_launch();
  if (l.size > 1)
    fail("{} runs as one process, but {} started {}: run it without the launcher (duet train is the data-parallel "
         "command)",
         command, launcher_name(l.launcher), l.size);
}

}  // namespace duet::dist
