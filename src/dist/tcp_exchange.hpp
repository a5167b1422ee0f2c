#pragma once
// The NCCL unique id without MPI (torchrun's convention): rank 0 listens on
// MASTER_PORT, every other rank connects to MASTER_ADDR:MASTER_PORT, says its
// rank and receives rank 0's bytes. Plain POSIX sockets, each wait bounded by
// `timeout_seconds`, every failure one line naming the address.
#include <string>
#include <vector>

namespace duet::dist {

struct TcpRendezvous {
  std::string master_addr;  // host name or address of rank 0
  int master_port = 0;
  int rank = 0, size = 1;
  double timeout_seconds = 300;
};

// Rank 0 passes `payload` and gets it back; the others get rank 0's payload.
std::vector<char> tcp_broadcast(const TcpRendezvous& where, const std::vector<char>& payload);

}  // namespace duet::dist
