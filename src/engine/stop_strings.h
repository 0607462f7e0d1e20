// Streams generated text while watching for stop strings: text that could still turn out to be the start of a
// stop string is held back until it cannot, and nothing from a stop string on is ever released.
#pragma once

#include <string>
#include <vector>

namespace qwen3vl {

class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stop_strings);

  // Adds generated text; returns the part that is now final. After a stop string appears, stopped() is true.
  std::string push(const std::string& text);
  // End of generation: releases whatever was held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_strings_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace qwen3vl
