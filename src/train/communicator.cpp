#include "train/communicator.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "train/communicator_mpi.h"

namespace qwen3vl {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, size_t) override {}
  void all_reduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int root) override {
    if (root != 0) throw std::out_of_range("broadcast: root " + std::to_string(root) + " of 1 rank");
  }
  void barrier() override {}
};

}  // namespace

Communicator::~Communicator() = default;

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

std::unique_ptr<Communicator> make_communicator() {
#ifdef QWEN3VL_WITH_MPI
  if (launched_by_mpi()) return make_mpi_communicator();
#endif
  return make_local_communicator();
}

bool communicator_has_mpi() {
#ifdef QWEN3VL_WITH_MPI
  return true;
#else
  return false;
#endif
}

}  // namespace qwen3vl
