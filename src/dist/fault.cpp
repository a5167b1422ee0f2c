#include "dist/fault.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace duet::dist {

void abort_job(Communicator& comm, std::string_view message) {
  std::fflush(stdout);
  const std::string text(message);
  std::fprintf(stderr, "duet: error: rank %d of %d: %s (ending the job)\n", comm.rank(), comm.size(), text.c_str());
  std::fflush(stderr);
  comm.abort(1);
  std::_Exit(1);  // not reached: tells the compiler (a virtual's [[noreturn]] is not inherited)
}

}  // namespace duet::dist
