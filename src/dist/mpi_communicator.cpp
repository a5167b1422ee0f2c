#include "dist/mpi_communicator.hpp"

#include <climits>
#include <vector>

#include <mpi.h>

#include "dist/shard_layout.hpp"
#include "util/error.hpp"

namespace duet::dist {

namespace {

// MPI counts are int: larger buffers go in pieces (a 70B model's shard is more
// than 2^31 floats on few ranks).
constexpr size_t kMaxPiece = INT_MAX / 2;

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("MPI: {} failed: {}", call, std::string(text, static_cast<size_t>(length)));
}

template <typename T>
void all_reduce_pieces(T* data, size_t count, MPI_Datatype type, MPI_Comm comm) {
  for (size_t done = 0; done < count; done += kMaxPiece) {
    const int n = static_cast<int>(std::min(kMaxPiece, count - done));
    check(MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, comm), "MPI_Allreduce");
  }
}

// Per-rank counts and displacements of a ShardLayout, as MPI's int arrays.
struct Counts {
  std::vector<int> counts, displs;
  Counts(const ShardLayout& layout) {
    if (layout.chunk > static_cast<size_t>(INT_MAX))
      fail("MPI: a shard of {} elements is more than MPI's int counts hold; use more ranks", layout.chunk);
    for (int r = 0; r < layout.ranks; ++r) {
      counts.push_back(static_cast<int>(layout.size(r)));
      displs.push_back(static_cast<int>(std::min(layout.begin(r), static_cast<size_t>(INT_MAX))));
    }
  }
};

}  // namespace

struct MpiCommunicator::State {
  MPI_Comm comm = MPI_COMM_NULL;
  bool finalize = false;  // this object initialised MPI
};

MpiCommunicator::MpiCommunicator() : state_(std::make_unique<State>()) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
      fail("MPI: MPI_Init_thread failed; launch with mpirun -np N (OpenMPI), or srun --mpi=pmix");
    state_->finalize = true;
  }
  check(MPI_Comm_dup(MPI_COMM_WORLD, &state_->comm), "MPI_Comm_dup");
  // Errors come back as codes and become duet::Error naming the call.
  MPI_Comm_set_errhandler(state_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(state_->comm, &rank_);
  MPI_Comm_size(state_->comm, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  if (state_->comm != MPI_COMM_NULL) MPI_Comm_free(&state_->comm);
  if (state_->finalize) MPI_Finalize();
}

void MpiCommunicator::all_reduce_sum(float* data, size_t count) {
  all_reduce_pieces(data, count, MPI_FLOAT, state_->comm);
}

void MpiCommunicator::all_reduce_sum(double* data, size_t count) {
  all_reduce_pieces(data, count, MPI_DOUBLE, state_->comm);
}

void MpiCommunicator::reduce_scatter_sum(const float* send, float* shard, size_t count) {
  const Counts c(ShardLayout(count, size_));
  if (count > static_cast<size_t>(INT_MAX)) {
    // Displacements would overflow: reduce each shard to its owner instead.
    const ShardLayout layout(count, size_);
    for (int r = 0; r < size_; ++r)
      check(MPI_Reduce(send + layout.begin(r), r == rank_ ? shard : nullptr, c.counts[r], MPI_FLOAT, MPI_SUM, r,
                       state_->comm),
            "MPI_Reduce");
    return;
  }
  check(MPI_Reduce_scatter(send, shard, c.counts.data(), MPI_FLOAT, MPI_SUM, state_->comm), "MPI_Reduce_scatter");
}

void MpiCommunicator::all_gather(float* data, size_t count) {
  const ShardLayout layout(count, size_);
  const Counts c(layout);
  if (count > static_cast<size_t>(INT_MAX)) {
    for (int r = 0; r < size_; ++r)
      check(MPI_Bcast(data + layout.begin(r), c.counts[r], MPI_FLOAT, r, state_->comm), "MPI_Bcast");
    return;
  }
  check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, c.counts.data(), c.displs.data(), MPI_FLOAT,
                       state_->comm),
        "MPI_Allgatherv");
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  auto* p = static_cast<char*>(data);
  for (size_t done = 0; done < bytes; done += kMaxPiece)
    check(MPI_Bcast(p + done, static_cast<int>(std::min(kMaxPiece, bytes - done)), MPI_BYTE, root, state_->comm),
          "MPI_Bcast");
}

void MpiCommunicator::barrier() { check(MPI_Barrier(state_->comm), "MPI_Barrier"); }

void MpiCommunicator::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] true
}

}  // namespace duet::dist
