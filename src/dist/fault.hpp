#pragma once
// What a failing rank does in a job of several: print the error once, naming
// the rank, and end every rank (MPI_Abort / ncclCommAbort), so that the
// others never wait for it in a collective.
#include <string_view>

#include "dist/communicator.hpp"

namespace duet::dist {

[[noreturn]] void abort_job(Communicator& comm, std::string_view message);

}  // namespace duet::dist
