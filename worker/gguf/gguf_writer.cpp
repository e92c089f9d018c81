#include "worker/gguf/gguf_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "worker/common/error.h"
#include "worker/gguf/gguf_split.h"

namespace clusterctl::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
constexpr int kMaxArrayDepth = 8;
constexpr size_t kMaxNameLength = 1 << 16;
constexpr uint64_t kChunkBytes = 16ull << 20;  // tensor data is produced and written 16 MiB at a time

Value integer_value(ValueType t, uint64_t v) { return Value{t, v}; }
Value signed_value(ValueType t, int64_t v) { return Value{t, v}; }

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

class Encoder {
 public:
  template <typename T>
  void put(T v) {
    append(&v, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    append(s.data(), s.size());
  }
  void put_value(const Value& v) {
    switch (v.type) {
      case ValueType::U8:
        put<uint8_t>(static_cast<uint8_t>(v.as_uint()));
        break;
      case ValueType::I8:
        put<int8_t>(static_cast<int8_t>(v.as_int()));
        break;
      case ValueType::U16:
        put<uint16_t>(static_cast<uint16_t>(v.as_uint()));
        break;
      case ValueType::I16:
        put<int16_t>(static_cast<int16_t>(v.as_int()));
        break;
      case ValueType::U32:
        put<uint32_t>(static_cast<uint32_t>(v.as_uint()));
        break;
      case ValueType::I32:
        put<int32_t>(static_cast<int32_t>(v.as_int()));
        break;
      case ValueType::U64:
        put<uint64_t>(v.as_uint());
        break;
      case ValueType::I64:
        put<int64_t>(v.as_int());
        break;
      case ValueType::F32:
        put<float>(static_cast<float>(v.as_double()));
        break;
      case ValueType::F64:
        put<double>(v.as_double());
        break;
      case ValueType::BOOL:
        put<uint8_t>(v.as_bool() ? 1 : 0);
        break;
      case ValueType::STRING:
        put_string(v.as_string());
        break;
      case ValueType::ARRAY: {
        const Array& a = v.as_array();
        put<uint32_t>(static_cast<uint32_t>(a.elem_type));
        put<uint64_t>(a.items.size());
        for (const Value& item : a.items) put_value(item);
        break;
      }
    }
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  void append(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, p, n);
  }

  std::vector<uint8_t> out_;
};

// Owns the temporary file until it is renamed into place; removes it on any failure.
class TempFile {
 public:
  explicit TempFile(std::string final_path) : final_(std::move(final_path)), tmp_(final_ + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) fail("cannot create");
  }
  ~TempFile() {
    if (f_) std::fclose(f_);
    if (!committed_) std::remove(tmp_.c_str());
  }
  void write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) fail("cannot write");
  }
  void pad_to(uint64_t pos, uint64_t target) {
    static const uint8_t zeros[4096] = {};
    while (pos < target) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof zeros, target - pos));
      write(zeros, n);
      pos += n;
    }
  }
  // Makes the file `size` bytes long without writing: the rest is a hole that reads as zeros.
  void extend_to(uint64_t size) {
    if (std::fflush(f_) != 0) fail("cannot write");
    if (::ftruncate(fileno(f_), static_cast<off_t>(size)) != 0) fail("cannot extend");
  }
  void commit() {
    if (std::fflush(f_) != 0) fail("cannot write");
    if (::fsync(fileno(f_)) != 0) fail("cannot sync");
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) fail("cannot close");
    if (std::rename(tmp_.c_str(), final_.c_str()) != 0)
      throw Error("cannot rename " + tmp_ + " to " + final_ + ": " + std::strerror(errno));
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw Error(std::string(what) + " " + tmp_ + ": " + std::strerror(errno) +
                " (check that the directory exists, is writable and has free space)");
  }
  std::string final_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

}  // namespace

Value value_u8(uint8_t v) { return integer_value(ValueType::U8, v); }
Value value_u16(uint16_t v) { return integer_value(ValueType::U16, v); }
Value value_u32(uint32_t v) { return integer_value(ValueType::U32, v); }
Value value_u64(uint64_t v) { return integer_value(ValueType::U64, v); }
Value value_i8(int8_t v) { return signed_value(ValueType::I8, v); }
Value value_i16(int16_t v) { return signed_value(ValueType::I16, v); }
Value value_i32(int32_t v) { return signed_value(ValueType::I32, v); }
Value value_i64(int64_t v) { return signed_value(ValueType::I64, v); }
Value value_f32(float v) { return Value{ValueType::F32, double{v}}; }
Value value_f64(double v) { return Value{ValueType::F64, v}; }
Value value_bool(bool v) { return Value{ValueType::BOOL, v}; }
Value value_string(std::string v) { return Value{ValueType::STRING, std::move(v)}; }

Value value_array(ValueType elem_type, std::vector<Value> items) {
  for (const Value& item : items)
    if (item.type != elem_type)
      throw Error("array of " + std::string(value_type_name(elem_type)) + " holds a " +
                  std::string(value_type_name(item.type)) + " item");
  return Value{ValueType::ARRAY, Array{elem_type, std::move(items)}};
}

Value value_string_array(const std::vector<std::string>& items) {
  std::vector<Value> v;
  v.reserve(items.size());
  for (const auto& s : items) v.push_back(value_string(s));
  return value_array(ValueType::STRING, std::move(v));
}

Value value_i32_array(const std::vector<int32_t>& items) {
  std::vector<Value> v;
  v.reserve(items.size());
  for (int32_t x : items) v.push_back(value_i32(x));
  return value_array(ValueType::I32, std::move(v));
}

Value value_f32_array(const std::vector<float>& items) {
  std::vector<Value> v;
  v.reserve(items.size());
  for (float x : items) v.push_back(value_f32(x));
  return value_array(ValueType::F32, std::move(v));
}

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > (1u << 20))
    throw Error("GGUF alignment " + std::to_string(alignment) + " is not a power of two up to 1 MiB");
  if (alignment != 32) add_kv("general.alignment", value_u32(static_cast<uint32_t>(alignment)));
}

void GgufWriter::check_value(const std::string& key, const Value& v, int depth) const {
  auto bad = [&](const std::string& why) -> Error {
    return Error("metadata '" + key + "' (" + std::string(value_type_name(v.type)) + "): " + why);
  };
  auto in_range = [&](int64_t lo, uint64_t hi) {
    if (const auto* u = std::get_if<uint64_t>(&v.v)) {
      if (*u > hi) throw bad(std::to_string(*u) + " does not fit");
    } else if (const auto* i = std::get_if<int64_t>(&v.v)) {
      if (*i < lo || (*i > 0 && static_cast<uint64_t>(*i) > hi)) throw bad(std::to_string(*i) + " does not fit");
    } else {
      throw bad("the value is not an integer");
    }
  };
  switch (v.type) {
    case ValueType::U8:
      return in_range(0, UINT8_MAX);
    case ValueType::I8:
      return in_range(INT8_MIN, INT8_MAX);
    case ValueType::U16:
      return in_range(0, UINT16_MAX);
    case ValueType::I16:
      return in_range(INT16_MIN, INT16_MAX);
    case ValueType::U32:
      return in_range(0, UINT32_MAX);
    case ValueType::I32:
      return in_range(INT32_MIN, INT32_MAX);
    case ValueType::U64:
      return in_range(0, UINT64_MAX);
    case ValueType::I64:
      return in_range(INT64_MIN, INT64_MAX);
    case ValueType::F32:
    case ValueType::F64:
      if (!std::holds_alternative<double>(v.v)) throw bad("the value is not a floating-point number");
      return;
    case ValueType::BOOL:
      if (!std::holds_alternative<bool>(v.v)) throw bad("the value is not a bool");
      return;
    case ValueType::STRING:
      if (!std::holds_alternative<std::string>(v.v)) throw bad("the value is not a string");
      return;
    case ValueType::ARRAY: {
      const auto* a = std::get_if<Array>(&v.v);
      if (!a) throw bad("the value is not an array");
      if (depth >= kMaxArrayDepth) throw bad("arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      for (const Value& item : a->items) {
        if (item.type != a->elem_type)
          throw bad("array of " + std::string(value_type_name(a->elem_type)) + " holds a " +
                    std::string(value_type_name(item.type)) + " item");
        check_value(key, item, depth + 1);
      }
      return;
    }
  }
  throw bad("unknown value type " + std::to_string(static_cast<uint32_t>(v.type)));
}

void GgufWriter::add_kv(std::string key, Value value) {
  if (key.empty() || key.size() > kMaxNameLength) throw Error("metadata key '" + key + "' is empty or too long");
  if (kv_index_.count(key)) throw Error("metadata key '" + key + "' is added twice");
  set_kv(std::move(key), std::move(value));
}

void GgufWriter::set_kv(std::string key, Value value) {
  check_value(key, value, 0);
  if (key == "general.alignment") {
    // The data layout depends on it: adopt the value and lay the tensors out again.
    if (!value.is_integer() || value.as_int() <= 0)
      throw Error("metadata 'general.alignment' must be a positive integer");
    const uint64_t a = value.as_uint();
    if ((a & (a - 1)) != 0 || a > (1u << 20))
      throw Error("metadata 'general.alignment': " + std::to_string(a) + " is not a power of two up to 1 MiB");
    alignment_ = a;
    data_size_ = 0;
    for (auto& t : tensors_) {
      t.offset = align_up(data_size_, alignment_);
      data_size_ = t.offset + t.n_bytes;
    }
  }
  if (auto it = kv_index_.find(key); it != kv_index_.end()) {
    kv_[it->second].second = std::move(value);
    return;
  }
  kv_index_.emplace(key, kv_.size());
  kv_.emplace_back(std::move(key), std::move(value));
}

const Value* GgufWriter::find_kv(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

void GgufWriter::copy_kv(const GgufFile& from, const std::function<bool(std::string_view)>& keep) {
  for (const auto& [key, value] : from.metadata())
    if (!keep || keep(key)) set_kv(key, value);
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, TensorSource source) {
  const std::string what = "tensor '" + name + "'";
  if (name.empty() || name.size() > kMaxNameLength) throw Error(what + ": name is empty or too long");
  if (tensor_index_.count(name)) throw Error(what + " is added twice");
  if (shape.empty() || shape.size() > 4)
    throw Error(what + ": " + std::to_string(shape.size()) + " dimensions (GGUF allows 1 to 4)");
  auto traits = type_traits(static_cast<uint32_t>(type));
  if (!traits || traits->block_size == 0)
    throw Error(what + ": unknown ggml type " + std::to_string(static_cast<uint32_t>(type)));
  uint64_t n = 1;
  for (uint64_t d : shape) {
    if (d == 0 || d > static_cast<uint64_t>(INT64_MAX) / n)
      throw Error(what + ": a dimension is 0 or the size overflows");
    n *= d;
  }
  if (shape[0] % traits->block_size != 0)
    throw Error(what + ": row length " + std::to_string(shape[0]) + " is not a multiple of the " +
                std::string(traits->name) + " block size " + std::to_string(traits->block_size));
  if (!source) throw Error(what + ": no data source");
  TensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.shape = std::move(shape);
  t.n_elements = n;
  t.n_bytes = n / traits->block_size * traits->type_size;
  t.offset = align_up(data_size_, alignment_);
  data_size_ = t.offset + t.n_bytes;
  tensor_index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
  sources_.push_back(std::move(source));
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape,
                            std::span<const uint8_t> bytes) {
  // A shape add_tensor will refuse gets row 0 here, so its error (naming the tensor) is the one seen.
  auto traits = type_traits(static_cast<uint32_t>(type));
  const bool whole_blocks = traits && traits->block_size && !shape.empty() && shape[0] % traits->block_size == 0;
  const uint64_t row = whole_blocks ? row_bytes(type, shape[0]) : 0;
  TensorSource src = [bytes, row](uint64_t first, uint64_t n, uint8_t* out) {
    std::memcpy(out, bytes.data() + first * row, n * row);
  };
  add_tensor(std::move(name), type, std::move(shape), std::move(src));
  if (tensors_.back().n_bytes != bytes.size()) {
    // Take the tensor back out so the writer stays usable after the error.
    TensorInfo bad = std::move(tensors_.back());
    tensors_.pop_back();
    sources_.pop_back();
    tensor_index_.erase(bad.name);
    data_size_ = tensors_.empty() ? 0 : tensors_.back().offset + tensors_.back().n_bytes;
    throw Error("tensor '" + bad.name + "': " + std::to_string(bytes.size()) +
                " bytes given, its shape and type need " + std::to_string(bad.n_bytes));
  }
}

void GgufWriter::copy_tensor(const GgufFile& from, const TensorInfo& t, std::string new_name) {
  add_tensor(new_name.empty() ? t.name : std::move(new_name), t.type, t.shape, from.tensor_data(t));
}

std::vector<uint8_t> GgufWriter::encode_header() const {
  Encoder e;
  e.put<uint32_t>(kMagic);
  e.put<uint32_t>(kVersion);
  e.put<uint64_t>(tensors_.size());
  e.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    e.put_string(key);
    e.put<uint32_t>(static_cast<uint32_t>(value.type));
    e.put_value(value);
  }
  for (const auto& t : tensors_) {
    e.put_string(t.name);
    e.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) e.put<uint64_t>(d);
    e.put<uint32_t>(static_cast<uint32_t>(t.type));
    e.put<uint64_t>(t.offset);
  }
  return std::move(e.bytes());
}

uint64_t GgufWriter::write(const std::string& path, const Progress& progress) const {
  const std::vector<uint8_t> header = encode_header();
  TempFile out(path);
  out.write(header.data(), header.size());
  const uint64_t data_start = align_up(header.size(), alignment_);
  out.pad_to(header.size(), data_start);

  if (sparse_) {
    const uint64_t end = align_up(data_size_, alignment_);
    out.extend_to(data_start + end);
    if (progress)
      for (size_t i = 0; i < tensors_.size(); ++i) progress(i, tensors_[i].offset + tensors_[i].n_bytes, data_size_);
    out.commit();
    return data_start + end;
  }
  std::vector<uint8_t> chunk;
  uint64_t pos = 0;  // within the data section
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const TensorInfo& t = tensors_[i];
    out.pad_to(pos, t.offset);
    pos = t.offset;
    const uint64_t rows = t.rows();
    const uint64_t row = t.n_bytes / rows;
    const uint64_t rows_per_chunk = std::max<uint64_t>(1, kChunkBytes / row);
    chunk.resize(static_cast<size_t>(std::min(rows, rows_per_chunk) * row));
    for (uint64_t r = 0; r < rows; r += rows_per_chunk) {
      const uint64_t n = std::min(rows_per_chunk, rows - r);
      sources_[i](r, n, chunk.data());
      out.write(chunk.data(), static_cast<size_t>(n * row));
    }
    pos += t.n_bytes;
    if (progress) progress(i, pos, data_size_);
  }
  // Pad the end as ggml does, so the file size is a multiple of the alignment too.
  const uint64_t end = align_up(pos, alignment_);
  out.pad_to(pos, end);
  out.commit();
  return data_start + end;
}

std::vector<std::string> GgufWriter::write_split(const std::string& path, int parts, const Progress& progress) const {
  const int n_tensors = static_cast<int>(tensors_.size());
  if (parts < 1 || parts > kMaxSplitParts || parts > std::max(1, n_tensors))
    throw Error("cannot write " + std::to_string(n_tensors) + " tensors as " + std::to_string(parts) +
                " parts: use 1 to " + std::to_string(std::min(n_tensors, kMaxSplitParts)) + " parts");
  const std::string prefix = path.ends_with(".gguf") ? path.substr(0, path.size() - 5) : path;
  // Part k ends at the first tensor whose data ends past (k+1)/parts of the bytes, leaving at
  // least one tensor for itself and each later part.
  std::vector<int> end(parts, n_tensors);
  for (int k = 0, i = 0; k + 1 < parts; ++k) {
    const uint64_t target = data_size_ / static_cast<uint64_t>(parts) * static_cast<uint64_t>(k + 1);
    ++i;
    while (i < n_tensors - (parts - 1 - k) && tensors_[i - 1].offset + tensors_[i - 1].n_bytes < target) ++i;
    end[k] = i;
  }
  std::vector<std::string> written;
  try {
    for (int k = 0, first = 0; k < parts; first = end[k++]) {
      GgufWriter w(alignment_);
      w.set_sparse(sparse_);
      if (k == 0)
        for (const auto& [key, value] : kv_) w.add_kv(key, value);
      w.set_kv(std::string(kSplitNo), value_u16(static_cast<uint16_t>(k)));
      w.set_kv(std::string(kSplitCount), value_u16(static_cast<uint16_t>(parts)));
      w.set_kv(std::string(kSplitTensorsCount), value_i32(n_tensors));
      for (int i = first; i < end[k]; ++i)
        w.add_tensor(tensors_[i].name, tensors_[i].type, tensors_[i].shape, sources_[i]);
      const std::string part_path = split_path(prefix, k + 1, parts);
      w.write(part_path, progress ? Progress([&, first](size_t i, uint64_t, uint64_t) {
                progress(first + i, tensors_[first + i].offset + tensors_[first + i].n_bytes, data_size_);
              })
                                  : Progress());
      written.push_back(part_path);
    }
  } catch (...) {
    std::error_code ec;
    for (const auto& p : written) std::filesystem::remove(p, ec);
    throw;
  }
  return written;
}

}  // namespace clusterctl::gguf
