// Run by ctest under `mpirun -np 2` (tests/CMakeLists.txt, MpiCommunicator.TwoRanks) when the build has MPI.
// Every rank fills vectors with values that depend on the rank, all-reduces them, and compares the result bit for
// bit with the rank-order sum it computes from every rank's values itself; then broadcasts from each rank.
// Exits 1 with a message on the first mismatch.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "train/communicator.h"

namespace {

// Values of mixed magnitudes and signs, so that the order of the additions shows in the rounding.
template <typename T>
std::vector<T> rank_values(int rank, size_t count) {
  std::vector<T> values(count);
  uint64_t state = 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(rank + 1) + count;
  for (T& v : values) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double unit = static_cast<double>(state >> 11) * 0x1p-53 - 0.5;
    v = static_cast<T>(unit * static_cast<double>(uint64_t{1} << ((state >> 3) % 24)));
  }
  return values;
}

template <typename T>
bool check_sum(qwen3vl::Communicator& communicator, size_t count, const char* type) {
  std::vector<T> data = rank_values<T>(communicator.rank(), count);
  std::vector<T> expected = rank_values<T>(0, count);
  for (int r = 1; r < communicator.size(); ++r) {
    const std::vector<T> other = rank_values<T>(r, count);
    for (size_t i = 0; i < count; ++i) expected[i] += other[i];
  }
  communicator.all_reduce_sum(data.data(), count);
  if (count != 0 && std::memcmp(data.data(), expected.data(), count * sizeof(T)) != 0) {
    size_t i = 0;
    while (std::memcmp(&data[i], &expected[i], sizeof(T)) == 0) ++i;
    std::fprintf(stderr, "rank %d: all_reduce_sum(%s, %zu): value %zu is %.17g, the rank-order sum %.17g\n",
                 communicator.rank(), type, count, i, static_cast<double>(data[i]), static_cast<double>(expected[i]));
    return false;
  }
  return true;
}

bool check_broadcast(qwen3vl::Communicator& communicator, int root, size_t bytes) {
  std::vector<unsigned char> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<unsigned char>(i * 7 + communicator.rank() * 13);
  communicator.broadcast(data.data(), bytes, root);
  for (size_t i = 0; i < bytes; ++i) {
    if (data[i] != static_cast<unsigned char>(i * 7 + root * 13)) {
      std::fprintf(stderr, "rank %d: broadcast from %d: byte %zu differs\n", communicator.rank(), root, i);
      return false;
    }
  }
  return true;
}

bool run_checks() {
  const auto communicator = qwen3vl::make_communicator();
  if (communicator->size() < 2) {
    std::fprintf(stderr, "expected to run under mpirun -np 2 or more, got %d rank(s)\n", communicator->size());
    return false;
  }
  bool ok = true;
  // 3,000,000 spans several of the communicator's rounds of 2^20 values.
  for (size_t count : {size_t{0}, size_t{1}, size_t{1000}, size_t{3000000}}) {
    ok = check_sum<float>(*communicator, count, "float") && ok;
    ok = check_sum<double>(*communicator, count, "double") && ok;
  }
  for (int root = 0; root < communicator->size(); ++root) ok = check_broadcast(*communicator, root, 1001) && ok;
  communicator->barrier();
  if (ok && communicator->rank() == 0) std::printf("%d ranks: all-reduce and broadcast OK\n", communicator->size());
  return ok;
}

}  // namespace

int main() {
  try {
    return run_checks() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
