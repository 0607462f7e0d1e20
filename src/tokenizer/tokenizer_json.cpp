#include "tokenizer/tokenizer_json.h"

#include <fstream>

#include "core/error.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

// A handler for json::sax_parse. Outside the two tables it builds the DOM the way nlohmann's own parser does (a
// repeated key keeps its last value). Inside them (model.vocab's object, model.merges' array) it validates and packs
// the entries; a container nested in an entry is only counted so that its end is recognised.
class Reader {
 public:
  explicit Reader(TokenizerJson& out) : out_(out) {}

  bool null() { return in_table() ? table_other() : value(nullptr); }
  bool boolean(bool v) { return in_table() ? table_other() : value(v); }
  bool number_integer(json::number_integer_t v) {
    return in_table() ? table_number(v >= 0 && v <= kMaxTokenId ? v : -1) : value(v);
  }
  bool number_unsigned(json::number_unsigned_t v) {
    return in_table() ? table_number(v <= static_cast<std::uint64_t>(kMaxTokenId) ? static_cast<std::int64_t>(v) : -1)
                      : value(v);
  }
  bool number_float(json::number_float_t v, const json::string_t& /*text*/) {
    return in_table() ? table_other() : value(v);
  }
  bool string(json::string_t& v) { return in_table() ? table_string(v) : value(std::move(v)); }
  bool binary(json::binary_t& v) { return in_table() ? table_other() : value(json::binary(std::move(v))); }
  bool key(json::string_t& k) {
    key_ = k;  // copy-assigned, so the buffer is reused from key to key
    return true;
  }
  bool start_object(std::size_t /*size*/) { return start(json::value_t::object); }
  bool start_array(std::size_t /*size*/) { return start(json::value_t::array); }
  bool end_object() { return end(/*array=*/false); }
  bool end_array() { return end(/*array=*/true); }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/, const json::exception& e) {
    parse_error_ = e.what();
    return false;
  }

  const std::string& parse_error_message() const { return parse_error_; }

 private:
  enum class Table { none, vocab, merges };

  bool in_table() const { return table_ != Table::none; }

  // Adds `v` to the innermost open container (or makes it the root) and returns where it now is.
  json* add(json v) {
    if (stack_.empty()) {
      out_.root = std::move(v);
      return &out_.root;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json v) {
    add(std::move(v));
    return true;
  }

  bool start(json::value_t type) {
    if (in_table()) return table_start(type == json::value_t::array);
    const bool in_model = stack_.size() == 2 && stack_.back() == model_;
    json* container = add(json(type));
    if (in_model && key_ == "vocab" && type == json::value_t::object) return begin_table(Table::vocab);
    if (in_model && key_ == "merges" && type == json::value_t::array) return begin_table(Table::merges);
    if (stack_.size() == 1 && stack_.back()->is_object() && key_ == "model") model_ = container;
    stack_.push_back(container);
    return true;
  }
  bool end(bool array) {
    if (in_table()) return table_end(array);
    stack_.pop_back();
    return true;
  }

  // The table stays empty in the DOM; a repeated key starts it over, as a DOM would keep only the last value.
  bool begin_table(Table table) {
    table_ = table;
    depth_ = 0;
    entry_ = 0;
    if (table == Table::vocab) {
      out_.vocab_tokens.clear();
      std::vector<std::int32_t>().swap(out_.vocab_ids);
      out_.vocab_error.clear();
    } else {
      out_.merges.clear();
      out_.merges_error.clear();
    }
    return true;
  }

  // Events inside a table. depth_ counts the containers open inside it: 0 between entries (or at a scalar entry),
  // 1 inside an entry that is a container (a merge rule's ["a", "b"]), and so on.
  bool table_start(bool array) {
    if (depth_ == 0) {
      if (table_ == Table::merges && array) {
        pair_size_ = 0;
        pair_ok_ = true;
      } else {
        bad_entry();
      }
    } else {
      pair_ok_ = false;
    }
    ++depth_;
    return true;
  }
  bool table_end(bool array) {
    if (depth_ == 0) {  // the table itself ends
      table_ = Table::none;
      return true;
    }
    if (--depth_ == 0) {
      if (table_ == Table::merges && array) {
        if (pair_ok_ && pair_size_ == 2) {
          add_merge(pair_[0], pair_[1]);
        } else {
          bad_entry();
        }
      }
      ++entry_;
    }
    return true;
  }
  bool table_number(std::int64_t id) {  // id: -1 for a negative or too large number
    if (depth_ > 0) return table_other();
    if (table_ == Table::vocab && id >= 0) {
      if (out_.vocab_error.empty()) {
        out_.vocab_tokens.push_back(key_);
        out_.vocab_ids.push_back(static_cast<std::int32_t>(id));
      }
      ++entry_;
      return true;
    }
    return table_other();
  }
  bool table_string(const std::string& s) {
    if (table_ == Table::merges && depth_ == 0) {  // "a b"
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        set_merges_error(" must be two tokens separated by one space");
      } else {
        add_merge(std::string_view(s).substr(0, space), std::string_view(s).substr(space + 1));
      }
      ++entry_;
      return true;
    }
    if (table_ == Table::merges && depth_ == 1 && pair_size_ < 2) {
      pair_[pair_size_++] = s;
      return true;
    }
    return table_other();
  }
  bool table_other() {  // a scalar that is no valid entry, or is where no scalar may be
    if (depth_ == 0) {
      bad_entry();
      ++entry_;
    } else {
      pair_ok_ = false;
    }
    return true;
  }

  void add_merge(std::string_view a, std::string_view b) {
    if (!out_.merges_error.empty()) return;
    out_.merges.push_back(a);
    out_.merges.push_back(b);
  }
  void bad_entry() {
    if (table_ == Table::vocab) {
      if (out_.vocab_error.empty()) {
        out_.vocab_error = "model.vocab[\"" + key_ + "\"] must be a non-negative integer id";
      }
    } else {
      set_merges_error(" must be \"a b\" or [\"a\", \"b\"]");
    }
  }
  void set_merges_error(const char* what) {
    if (out_.merges_error.empty()) out_.merges_error = "model.merges[" + std::to_string(entry_) + "]" + what;
  }

  TokenizerJson& out_;
  std::vector<json*> stack_;  // the open containers of the DOM, innermost last
  json* model_ = nullptr;     // root["model"] once that is an object
  std::string key_;           // the last key read
  std::string parse_error_;

  Table table_ = Table::none;
  int depth_ = 0;
  std::size_t entry_ = 0;     // index of the table's current entry
  std::string pair_[2];       // a merge rule in ["a", "b"] form, as it is read
  int pair_size_ = 0;
  bool pair_ok_ = false;
};

}  // namespace

TokenizerJson read_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot open tokenizer file");
  TokenizerJson out;
  Reader reader(out);
  bool ok = false;
  std::string error;
  try {
    ok = json::sax_parse(in, &reader);
    error = reader.parse_error_message();
  } catch (const json::exception& e) {
    error = e.what();
  }
  if (!ok) throw_error(path, ": invalid tokenizer JSON: ", error);
  return out;
}

}  // namespace qwen3vl
