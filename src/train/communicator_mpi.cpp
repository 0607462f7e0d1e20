#include <mpi.h>  // the C interface (CMakeLists.txt: MPI_CXX_SKIP_MPICXX)

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "train/communicator_mpi.h"

namespace qwen3vl {
namespace {

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string("MPI: ") + call + ": " + std::string(text, static_cast<size_t>(length)));
}

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

// One MPI communicator may exist at a time: MPI initializes once per process and cannot restart after finalizing.
std::atomic<bool> mpi_communicator_made{false};

// Values summed per round: each round needs one scratch buffer of about this many values, and MPI counts are ints.
constexpr size_t kValuesPerRound = size_t{1} << 20;
// Bytes per MPI_Bcast (an int count).
constexpr size_t kBytesPerBroadcast = size_t{1} << 30;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw std::runtime_error("MPI: the library does not support MPI_THREAD_FUNNELED");
    }
    // A private communicator whose errors come back as codes (check() throws) instead of aborting every rank.
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  ~MpiCommunicator() override {
    MPI_Comm_free(&comm_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(float* data, size_t count) override { sum_in_rank_order(data, count); }
  void all_reduce_sum(double* data, size_t count) override { sum_in_rank_order(data, count); }

  void broadcast(void* data, size_t bytes, int root) override {
    if (root < 0 || root >= size_) {
      throw std::out_of_range("broadcast: root " + std::to_string(root) + " of " + std::to_string(size_) + " ranks");
    }
    auto* bytes_data = static_cast<unsigned char*>(data);
    for (size_t offset = 0; offset < bytes; offset += kBytesPerBroadcast) {
      const int n = static_cast<int>(std::min(kBytesPerBroadcast, bytes - offset));
      check(MPI_Bcast(bytes_data + offset, n, MPI_BYTE, root, comm_), "MPI_Bcast");
    }
  }

  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  // Round by round over at most kValuesPerRound values, split into one slice per rank: every rank sends slice r to
  // rank r (MPI_Alltoallv), rank r adds the ranks' copies of its slice in rank order, and every rank gathers the
  // summed slices (MPI_Allgatherv). Each value is added by one rank in one fixed order, so the result is the same
  // bits everywhere, and the work and traffic are spread over the ranks.
  template <typename T>
  void sum_in_rank_order(T* data, size_t count) {
    if (size_ == 1) return;
    const size_t ranks = static_cast<size_t>(size_);
    std::vector<int> slice_counts(ranks), slice_offsets(ranks), received_counts(ranks), received_offsets(ranks);
    std::vector<T> received;
    for (size_t begin = 0; begin < count; begin += kValuesPerRound) {
      const size_t round = std::min(kValuesPerRound, count - begin);
      for (size_t r = 0; r < ranks; ++r) {
        const size_t slice_begin = round * r / ranks, slice_end = round * (r + 1) / ranks;
        slice_offsets[r] = static_cast<int>(slice_begin);
        slice_counts[r] = static_cast<int>(slice_end - slice_begin);
      }
      const int mine = slice_counts[static_cast<size_t>(rank_)];
      for (size_t r = 0; r < ranks; ++r) {
        received_counts[r] = mine;
        received_offsets[r] = static_cast<int>(r) * mine;
      }
      received.resize(ranks * static_cast<size_t>(mine));
      T* values = data + begin;
      check(MPI_Alltoallv(values, slice_counts.data(), slice_offsets.data(), mpi_type<T>(), received.data(),
                          received_counts.data(), received_offsets.data(), mpi_type<T>(), comm_),
            "MPI_Alltoallv");
      T* my_slice = values + slice_offsets[static_cast<size_t>(rank_)];
      for (int i = 0; i < mine; ++i) {
        T sum = received[static_cast<size_t>(i)];
        for (size_t r = 1; r < ranks; ++r) sum += received[r * static_cast<size_t>(mine) + static_cast<size_t>(i)];
        my_slice[i] = sum;
      }
      check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, values, slice_counts.data(), slice_offsets.data(),
                           mpi_type<T>(), comm_),
            "MPI_Allgatherv");
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

std::unique_ptr<Communicator> make_mpi_communicator() {
  if (mpi_communicator_made.exchange(true)) {
    throw std::logic_error("MPI: a process makes one MPI communicator (MPI initializes and finalizes once)");
  }
  return std::make_unique<MpiCommunicator>();
}

}  // namespace qwen3vl
