// The collective operations data-parallel fine-tuning needs: every rank trains on its own micro-batches, then the
// gradients (one flat buffer) and the loss sums and token counts are summed over the ranks, and rank 0's choices
// (seed, resumed state) are broadcast.
//
// Determinism: all_reduce_sum adds the ranks' values in rank order, (((r0 + r1) + r2) + ...), one float (or double)
// rounding per addition, whatever the timing; every rank ends with the same bits. With two ranks that is the single
// rounded sum that one process accumulating the same two micro-batches computes. MPI_Allreduce promises neither
// (its algorithm and order depend on the library, the message size and the process count), so it is not used.
//
// make_communicator() picks MPI when the build has it (QWEN3VL_WITH_MPI, CMakeLists.txt) and the process was
// launched by an MPI launcher (mpirun, mpiexec, srun); otherwise the local one (one rank, no-ops). The MPI
// communicator owns MPI's lifetime: it calls MPI_Init_thread (MPI_THREAD_FUNNELED: only the thread that made it
// calls MPI) and its destructor calls MPI_Finalize, so a process makes at most one, from its main thread.
#pragma once

#include <cstddef>
#include <memory>

namespace qwen3vl {

class Communicator {
 public:
  virtual ~Communicator();
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Sums `count` values over all ranks in place, in rank order (above). Every rank passes the same count.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  virtual void all_reduce_sum(double* data, size_t count) = 0;  // loss sums and token counts
  // Copies `bytes` bytes from rank `root`'s buffer into every other rank's.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

std::unique_ptr<Communicator> make_local_communicator();

// MPI when built with it and launched by an MPI launcher, else make_local_communicator(). Throws when MPI cannot
// start or a second MPI communicator is asked for.
std::unique_ptr<Communicator> make_communicator();

// True when this build can run data-parallel over MPI.
bool communicator_has_mpi();

}  // namespace qwen3vl
