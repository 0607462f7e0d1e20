#include "io/safetensors.h"

#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace qwen3vl {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxCount = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

bool parse_dtype(const std::string& text, DType* dtype) {
  if (text == "F32") *dtype = DType::F32;
  else if (text == "F16") *dtype = DType::F16;
  else if (text == "BF16") *dtype = DType::BF16;
  else if (text == "U8") *dtype = DType::U8;
  else return false;
  return true;
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

TensorView parse_entry(const std::string& path, const std::string& name, const json& entry,
                       const uint8_t* data_start, uint64_t header_size, uint64_t data_size) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets"))
    throw_error(path, ": tensor ", name, ": header entry needs dtype, shape and data_offsets");
  TensorView view;
  view.name = name;
  view.file = path;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) throw_error(path, ": tensor ", name, ": dtype is not a string");
  if (!parse_dtype(dtype.get<std::string>(), &view.dtype))
    throw_error(path, ": tensor ", name, ": unsupported dtype ", dtype.get<std::string>(),
                " (supported: F32, F16, BF16, U8)");
  const json& shape = entry["shape"];
  if (!shape.is_array()) throw_error(path, ": tensor ", name, ": shape is not an array");
  // Every size that can reach int64_t arithmetic (TensorView::numel, the binders) is checked to fit it.
  uint64_t numel = 1;
  for (const json& dim : shape) {
    if (!dim.is_number_unsigned()) throw_error(path, ": tensor ", name, ": bad shape entry ", dim.dump());
    const uint64_t size = dim.get<uint64_t>();
    if (size > kMaxCount) throw_error(path, ": tensor ", name, ": dimension ", size, " exceeds 2^63 - 1");
    if (__builtin_mul_overflow(numel, size, &numel) || numel > kMaxCount)
      throw_error(path, ": tensor ", name, ": shape ", shape.dump(), " has more than 2^63 - 1 elements");
    view.shape.push_back(static_cast<int64_t>(size));
  }
  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw_error(path, ": tensor ", name, ": data_offsets must be two unsigned integers");
  const uint64_t begin = offsets[0].get<uint64_t>();
  const uint64_t end = offsets[1].get<uint64_t>();
  if (begin > end || end > data_size)
    throw_error(path, ": tensor ", name, ": data_offsets [", begin, ", ", end,
                "] lie outside the file's ", data_size, " data bytes (truncated file?)");
  uint64_t needed = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(view.dtype)), &needed))
    throw_error(path, ": tensor ", name, ": shape ", view.shape_string(), " in ", dtype_name(view.dtype),
                " needs more than 2^64 bytes (", end - begin, " stored)");
  if (end - begin != needed)
    throw_error(path, ": tensor ", name, ": ", end - begin, " bytes stored but shape ", view.shape_string(), " in ",
                dtype_name(view.dtype), " needs ", needed);
  view.data = data_start + begin;
  view.bytes = end - begin;
  // The kernels read elements through typed pointers (and quantized blobs' fp16 scales likewise), so each tensor
  // must start at a multiple of its element size in memory (the mapping is page aligned). safetensors writers align
  // the data (header padded to 8 bytes, tensors ordered by alignment); a file that does not is refused, not copied.
  const uint64_t alignment = view.dtype == DType::U8 ? 2 : dtype_size(view.dtype);
  if (reinterpret_cast<uintptr_t>(view.data) % alignment != 0)
    throw_error(path, ": tensor ", name, ": data at file offset ", 8 + header_size + begin, " is not aligned to its ",
                alignment, "-byte elements (rewrite the file with a safetensors writer that aligns it)");
  return view;
}

// A quantized tensor's metadata entry (see safetensors.h): the stored U8 bytes become a Q8 / Q4 view of the
// logical shape, [rows, cols] or [experts, rows, cols], and must be exactly that many blobs of the layout.
void apply_quant_metadata(const std::string& path, const std::string& text, TensorView& view) {
  const json meta = json::parse(text, nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || !meta.contains("format") || !meta["format"].is_string() ||
      !meta.contains("shape") || !meta["shape"].is_array())
    throw_error(path, ": __metadata__ entry of tensor ", view.name, " is not {format, block, shape}");
  if (view.dtype != DType::U8)
    throw_error(path, ": tensor ", view.name, " has quantization metadata but dtype ", dtype_name(view.dtype),
                " (expected U8)");
  const std::string format = meta["format"].get<std::string>();
  if (format == "q8") view.dtype = DType::Q8;
  else if (format == "q4") view.dtype = DType::Q4;
  else throw_error(path, ": tensor ", view.name, ": unknown quantization format '", format, "' (expected q8 or q4)");
  if (!meta.contains("block") || !meta["block"].is_number_unsigned() || meta["block"].get<uint64_t>() != 32)
    throw_error(path, ": tensor ", view.name, ": quantization block must be 32");
  if (!meta.contains("layout") || meta["layout"] != kQuantLayoutName)
    throw_error(path, ": tensor ", view.name, ": quantized layout '",
                meta.contains("layout") ? meta["layout"].dump() : std::string("(none)"), "' is not ", kQuantLayoutName,
                " (written by another qwen3vl version): run qwen3vl quantize again on the original checkpoint");
  const json& shape = meta["shape"];
  if (shape.size() != 2 && shape.size() != 3)
    throw_error(path, ": tensor ", view.name, ": quantized shape ", shape.dump(),
                " must be [rows, cols] or [experts, rows, cols]");
  std::vector<uint64_t> dims;
  for (const json& dim : shape) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() == 0 || dim.get<uint64_t>() > kMaxCount)
      throw_error(path, ": tensor ", view.name, ": bad quantized shape ", shape.dump());
    dims.push_back(dim.get<uint64_t>());
  }
  const uint64_t count = dims.size() == 3 ? dims[0] : 1;
  uint64_t needed = 0;
  const bool fits = quant_blob_bytes(view.dtype, count, dims[dims.size() - 2], dims.back(), &needed);
  if (!fits || view.bytes != needed)
    throw_error(path, ": tensor ", view.name, " holds ", view.bytes, " bytes but ", format, " shape ", shape.dump(),
                " needs ", fits ? std::to_string(needed) : std::string("more than 2^64"));
  view.shape.assign(dims.begin(), dims.end());
}

}  // namespace

int64_t TensorView::numel() const {
  // Cannot overflow for views read by SafetensorsFile (the product was checked there); other views saturate.
  int64_t count = 1;
  for (int64_t dim : shape)
    if (dim < 0 || __builtin_mul_overflow(count, dim, &count)) return std::numeric_limits<int64_t>::max();
  return count;
}

std::string TensorView::shape_string() const {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

std::vector<float> tensor_floats(const TensorView& view) {
  if (!is_float_dtype(view.dtype))
    throw_error(view.file, ": tensor ", view.name, " has dtype ", dtype_name(view.dtype), "; expected F32, BF16 or F16");
  std::vector<float> values(static_cast<size_t>(view.numel()));
  convert_to_f32(view.dtype, view.data, values.data(), values.size());
  return values;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const uint64_t size = file_.size();
  if (size < 8) throw_error(path, ": truncated safetensors file (", size, " bytes, no header)");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | file_.data()[i];
  if (header_size > size - 8)
    throw_error(path, ": safetensors header claims ", header_size, " bytes but the file has ",
                size - 8, " after the length field (truncated or corrupt)");
  const char* header_text = reinterpret_cast<const char*>(file_.data() + 8);
  const json header = json::parse(header_text, header_text + header_size, nullptr, false);
  if (header.is_discarded() || !header.is_object())
    throw_error(path, ": corrupt safetensors header (not a JSON object)");
  const uint8_t* data_start = file_.data() + 8 + header_size;
  const uint64_t data_size = size - 8 - header_size;
  const json* metadata = header.contains("__metadata__") && header["__metadata__"].is_object()
                             ? &header["__metadata__"]
                             : nullptr;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    TensorView view = parse_entry(path, name, entry, data_start, header_size, data_size);
    if (metadata && metadata->contains(name) && (*metadata)[name].is_string())
      apply_quant_metadata(path, (*metadata)[name].get<std::string>(), view);
    if (view.dtype == DType::U8)
      throw_error(path, ": tensor ", name, ": dtype U8 without a quantized layout in __metadata__ (U8 is read only as "
                  "the bytes of a tensor written by qwen3vl quantize)");
    tensors_.emplace(name, std::move(view));
  }
}

TensorStore TensorStore::open_dir(const std::string& dir) {
  TensorStore store;
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string single_path = dir + "/model.safetensors";
  if (file_exists(index_path)) {
    store.description_ = index_path;
    std::ifstream in(index_path);
    const json index = json::parse(in, nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
        !index["weight_map"].is_object())
      throw_error(index_path, ": not a safetensors index (needs a weight_map object)");
    std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
    for (const auto& [name, shard] : index["weight_map"].items()) {
      if (!shard.is_string()) throw_error(index_path, ": weight_map[", name, "] is not a file name");
      const std::string shard_name = shard.get<std::string>();
      if (shard_name.find('/') != std::string::npos)
        throw_error(index_path, ": weight_map[", name, "] names a file outside the checkpoint");
      auto& file = shards[shard_name];
      if (!file) {
        file = std::make_shared<SafetensorsFile>(dir + "/" + shard_name);
        store.files_.push_back(file);
      }
      auto found = file->tensors().find(name);
      if (found == file->tensors().end())
        throw_error(file->path(), ": tensor ", name, " listed in ", index_path, " is not in this shard");
      store.index_[name] = &found->second;
    }
  } else if (file_exists(single_path)) {
    store.description_ = single_path;
    auto file = std::make_shared<SafetensorsFile>(single_path);
    store.files_.push_back(file);
    for (const auto& [name, view] : file->tensors()) store.index_[name] = &view;
  } else {
    throw_error(dir, ": no model.safetensors or model.safetensors.index.json");
  }
  return store;
}

void TensorStore::release(const TensorView& view) const { release_mapped_range(view.data, view.bytes); }

const TensorView* TensorStore::find(const std::string& name) const {
  auto found = index_.find(name);
  return found == index_.end() ? nullptr : found->second;
}

const TensorView& TensorStore::get(const std::string& name) const {
  const TensorView* view = find(name);
  if (!view) throw_error(description_, ": missing tensor ", name);
  return *view;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  for (const auto& entry : index_) out.push_back(entry.first);
  return out;
}

}  // namespace qwen3vl

namespace qwen3vl {

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const TensorToWrite& t : tensors) {
    offset = (offset + 7) / 8 * 8;
    offsets.push_back(offset);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string text = header.dump();
  text.append((8 - (text.size() % 8)) % 8, ' ');  // data starts 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw_error(path, ": cannot create");
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(length), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  uint64_t written = 0;
  const char zeros[8] = {};
  for (size_t i = 0; i < tensors.size(); ++i) {
    out.write(zeros, static_cast<std::streamsize>(offsets[i] - written));
    out.write(static_cast<const char*>(tensors[i].data), static_cast<std::streamsize>(tensors[i].bytes));
    written = offsets[i] + tensors[i].bytes;
    if (tensors[i].mapped) release_mapped_range(tensors[i].data, tensors[i].bytes);
  }
  out.flush();
  if (!out) throw_error(path, ": write failed (disk full?)");
}

}  // namespace qwen3vl
