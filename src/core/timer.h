// Wall-clock stopwatch for the timing lines the frontends print.
#pragma once

#include <chrono>

namespace qwen3vl {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace qwen3vl
