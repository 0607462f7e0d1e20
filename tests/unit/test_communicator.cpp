// The local communicator (one process): the collectives leave the data as it is. The MPI one is checked under
// mpirun by tests/mpi/mpi_communicator_check.cpp (ctest MpiCommunicator.TwoRanks).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "train/communicator.h"

namespace qwen3vl {
namespace {

TEST(LocalCommunicator, IsRankZeroOfOne) {
  const auto communicator = make_local_communicator();
  EXPECT_EQ(communicator->rank(), 0);
  EXPECT_EQ(communicator->size(), 1);
}

TEST(LocalCommunicator, AllReduceLeavesTheValuesUnchanged) {
  const auto communicator = make_local_communicator();
  std::vector<float> floats = {1.5f, -0.0f, 3e-39f, 7.25f};
  const std::vector<float> floats_before = floats;
  communicator->all_reduce_sum(floats.data(), floats.size());
  EXPECT_EQ(std::memcmp(floats.data(), floats_before.data(), floats.size() * sizeof(float)), 0);
  std::vector<double> doubles = {123456789.0, 0.1};
  const std::vector<double> doubles_before = doubles;
  communicator->all_reduce_sum(doubles.data(), doubles.size());
  EXPECT_EQ(doubles, doubles_before);
  communicator->all_reduce_sum(static_cast<float*>(nullptr), 0);
}

TEST(LocalCommunicator, BroadcastFromRankZeroIsANoOpAndOtherRootsAreRejected) {
  const auto communicator = make_local_communicator();
  std::vector<unsigned char> bytes = {1, 2, 3};
  communicator->broadcast(bytes.data(), bytes.size(), 0);
  EXPECT_EQ(bytes, (std::vector<unsigned char>{1, 2, 3}));
  EXPECT_THROW(communicator->broadcast(bytes.data(), bytes.size(), 1), std::out_of_range);
  communicator->barrier();
}

TEST(Communicator, WithoutAnMpiLauncherIsLocal) {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(name)) GTEST_SKIP() << "running under an MPI launcher (" << name << ")";
  }
  const auto communicator = make_communicator();
  EXPECT_EQ(communicator->size(), 1);
  EXPECT_EQ(communicator->rank(), 0);
}

}  // namespace
}  // namespace qwen3vl
