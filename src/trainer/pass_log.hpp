#pragma once
// The engine passes this rank makes in a step or an evaluation, in order: a
// reference forward, a policy forward, a backprop, the last-backprop mark (an
// empty pass counts as its real kind). The CUDA engine's ZeRO-3 gathers the
// weights in every pass and ZeRO-0/1/2 sum the gradients in backprops, all
// collectively: ranks whose sequences differ would wait for each other until
// --nccl-timeout. agree() compares the sequences across the ranks (a hash of
// each, one all-reduce), so a trainer that lets them drift fails at once, with
// one line, and on every engine (the CPU engine's MPI tests in CI too).
#include <cstdint>
#include <string>

#include "dist/communicator.hpp"

namespace duet::trainer {

enum class Pass : char { reference = 'R', policy = 'P', backprop = 'B', last_mark = 'M' };

class PassLog {
 public:
  void note(Pass p) { sequence_ += static_cast<char>(p); }
  // Collective (nothing with one rank): fails if the ranks' sequences since
  // the last call differ; clears this rank's. `where`: "step 12", "evaluation".
  void agree(dist::Communicator& comm, const std::string& where);

 private:
  std::string sequence_;
};

}  // namespace duet::trainer
