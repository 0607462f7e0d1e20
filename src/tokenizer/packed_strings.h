// A list of many short strings kept in one buffer. tokenizer.json holds ~450k token strings (vocab keys and the two
// sides of every merge rule), most of 2-10 bytes; as std::strings each would cost 32 bytes plus, past 15 bytes, a
// heap block of its own. Here each costs its bytes plus a 4-byte end offset.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace qwen3vl {

class PackedStrings {
 public:
  void push_back(std::string_view s) {
    if (s.size() > std::numeric_limits<std::uint32_t>::max() - text_.size()) {
      throw std::length_error("PackedStrings: more than 4 GiB of text");
    }
    text_.append(s);
    ends_.push_back(static_cast<std::uint32_t>(text_.size()));
  }
  void reserve(std::size_t count, std::size_t text_bytes) {
    ends_.reserve(count);
    text_.reserve(text_bytes);
  }
  void clear() {  // also gives the memory back
    std::string().swap(text_);
    std::vector<std::uint32_t>().swap(ends_);
  }

  std::size_t size() const { return ends_.size(); }
  std::string_view operator[](std::size_t i) const {
    const std::uint32_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(text_).substr(begin, ends_[i] - begin);
  }

 private:
  std::string text_;                  // all strings, concatenated
  std::vector<std::uint32_t> ends_;  // end offset of string i in text_ (it starts where string i-1 ends)
};

}  // namespace qwen3vl
