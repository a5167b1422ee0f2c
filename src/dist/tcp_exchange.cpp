#include "dist/tcp_exchange.hpp"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/error.hpp"

namespace duet::dist {

namespace {

using Clock = std::chrono::steady_clock;

class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

std::string where(const TcpRendezvous& w) { return fmt::format("{}:{}", w.master_addr, w.master_port); }

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(std::min<int64_t>(left, 1 << 30)) : 0;
}

// Waits until `fd` is readable (or writable); false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

void send_all(int fd, const void* data, size_t bytes, Clock::time_point deadline, const std::string& peer) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    if (!wait_for(fd, POLLOUT, deadline)) fail("NCCL id exchange: timed out sending to {}", peer);
    const ssize_t n = ::send(fd, p, bytes, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("NCCL id exchange: sending to {} failed: {}", peer, std::strerror(errno));
    p += n, bytes -= static_cast<size_t>(n);
  }
}

void recv_all(int fd, void* data, size_t bytes, Clock::time_point deadline, const std::string& peer) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    if (!wait_for(fd, POLLIN, deadline)) fail("NCCL id exchange: timed out waiting for {}", peer);
    const ssize_t n = ::recv(fd, p, bytes, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) fail("NCCL id exchange: {} closed the connection early", peer);
    if (n < 0) fail("NCCL id exchange: receiving from {} failed: {}", peer, std::strerror(errno));
    p += n, bytes -= static_cast<size_t>(n);
  }
}

std::vector<char> serve(const TcpRendezvous& w, const std::vector<char>& payload, Clock::time_point deadline) {
  Socket listener(::socket(AF_INET6, SOCK_STREAM, 0));
  bool v6 = listener.fd() >= 0;
  if (!v6) listener = Socket(::socket(AF_INET, SOCK_STREAM, 0));
  if (listener.fd() < 0) fail("NCCL id exchange: cannot open a socket: {}", std::strerror(errno));
  const int one = 1, zero = 0;
  ::setsockopt(listener.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    ::setsockopt(listener.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 too
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(static_cast<uint16_t>(w.master_port));
    rc = ::bind(listener.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(w.master_port));
    rc = ::bind(listener.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0 || ::listen(listener.fd(), w.size) != 0)
    fail("MASTER_PORT={}: rank 0 cannot listen there ({}); choose a free port", w.master_port, std::strerror(errno));
  std::vector<bool> seen(static_cast<size_t>(w.size), false);
  const uint64_t length = payload.size();
  for (int joined = 1; joined < w.size; ++joined) {
    if (!wait_for(listener.fd(), POLLIN, deadline))
      fail("NCCL id exchange: only {} of {} ranks reached {} within {} s; check that every rank has the same "
           "MASTER_ADDR and MASTER_PORT",
           joined, w.size, where(w), w.timeout_seconds);
    Socket peer(::accept(listener.fd(), nullptr, nullptr));
    if (peer.fd() < 0) fail("NCCL id exchange: accept on port {} failed: {}", w.master_port, std::strerror(errno));
    int32_t rank = -1;
    recv_all(peer.fd(), &rank, sizeof rank, deadline, "a connecting rank");
    if (rank <= 0 || rank >= w.size || seen[static_cast<size_t>(rank)])
      fail("NCCL id exchange: a process at {} said it is rank {}: two jobs on one MASTER_PORT, or RANK is wrong",
           where(w), rank);
    seen[static_cast<size_t>(rank)] = true;
    const std::string who = fmt::format("rank {}", rank);
    send_all(peer.fd(), &length, sizeof length, deadline, who);
    send_all(peer.fd(), payload.data(), payload.size(), deadline, who);
  }
  return payload;
}

Socket connect_to(const TcpRendezvous& w, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(w.master_port);
  std::string last_error = "no address";
  // Rank 0 may not listen yet: retry until the deadline.
  while (Clock::now() < deadline) {
    addrinfo* found = nullptr;
    const int gai = ::getaddrinfo(w.master_addr.c_str(), port.c_str(), &hints, &found);
    if (gai != 0) {
      last_error = ::gai_strerror(gai);
    } else {
      for (addrinfo* a = found; a; a = a->ai_next) {
        Socket s(::socket(a->ai_family, a->ai_socktype, a->ai_protocol));
        if (s.fd() >= 0 && ::connect(s.fd(), a->ai_addr, a->ai_addrlen) == 0) {
          ::freeaddrinfo(found);
          return s;
        }
        last_error = std::strerror(errno);
      }
      ::freeaddrinfo(found);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  fail("NCCL id exchange: cannot reach rank 0 at {} within {} s ({}); check MASTER_ADDR and MASTER_PORT, and that "
       "rank 0 started",
       where(w), w.timeout_seconds, last_error);
}

}  // namespace

std::vector<char> tcp_broadcast(const TcpRendezvous& w, const std::vector<char>& payload) {
  if (w.size <= 1) return payload;
  if (w.master_addr.empty() || w.master_port <= 0)
    fail("MASTER_ADDR and MASTER_PORT must be set to rank 0's host and a free port (the ranks exchange the NCCL id "
         "there when the job was not started by mpirun)");
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(w.timeout_seconds));
  if (w.rank == 0) return serve(w, payload, deadline);
  Socket s = connect_to(w, deadline);
  const int32_t rank = w.rank;
  const std::string peer = fmt::format("rank 0 at {}", where(w));
  send_all(s.fd(), &rank, sizeof rank, deadline, peer);
  uint64_t length = 0;
  recv_all(s.fd(), &length, sizeof length, deadline, peer);
  if (length > (1u << 20)) fail("NCCL id exchange: {} announced {} bytes: not a duet rank 0", peer, length);
  std::vector<char> out(length);
  recv_all(s.fd(), out.data(), out.size(), deadline, peer);
  return out;
}

}  // namespace duet::dist
