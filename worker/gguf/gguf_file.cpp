#include "worker/gguf/gguf_file.h"

#include <cstring>
#include <sstream>

#include "worker/common/error.h"
#include "worker/gguf/gguf_split.h"

namespace clusterctl::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxNameLength = 1 << 16;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A bounds-checked cursor over the file image; every read names the field it is for.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(path_ + ": " + field + " at byte " + std::to_string(pos_) + ": " + what);
  }

  void need(uint64_t n, const std::string& field) const {
    if (n > size_ - pos_)
      fail(field,
           "file is truncated (needs " + std::to_string(n) + " bytes, " + std::to_string(size_ - pos_) + " left)");
  }

  template <typename T>
  T read(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& field, uint64_t max_len = UINT64_MAX) {
    uint64_t len = read<uint64_t>(field + " length");
    if (len > max_len)
      fail(field, "length " + std::to_string(len) + " exceeds the limit of " + std::to_string(max_len));
    need(len, field);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

// Smallest encoded size of one value of a type: bounds absurd counts before allocating.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
    case ValueType::STRING:
      return 8;
    case ValueType::ARRAY:
      return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= 12; }

Value read_value(Reader& r, ValueType type, const std::string& field, int depth) {
  Value out;
  out.type = type;
  switch (type) {
    case ValueType::U8:
      out.v = uint64_t{r.read<uint8_t>(field)};
      break;
    case ValueType::I8:
      out.v = int64_t{r.read<int8_t>(field)};
      break;
    case ValueType::U16:
      out.v = uint64_t{r.read<uint16_t>(field)};
      break;
    case ValueType::I16:
      out.v = int64_t{r.read<int16_t>(field)};
      break;
    case ValueType::U32:
      out.v = uint64_t{r.read<uint32_t>(field)};
      break;
    case ValueType::I32:
      out.v = int64_t{r.read<int32_t>(field)};
      break;
    case ValueType::U64:
      out.v = r.read<uint64_t>(field);
      break;
    case ValueType::I64:
      out.v = r.read<int64_t>(field);
      break;
    case ValueType::F32:
      out.v = double{r.read<float>(field)};
      break;
    case ValueType::F64:
      out.v = r.read<double>(field);
      break;
    case ValueType::BOOL: {
      uint8_t b = r.read<uint8_t>(field);
      if (b > 1) r.fail(field, "bool value " + std::to_string(b) + " is neither 0 nor 1");
      out.v = b == 1;
      break;
    }
    case ValueType::STRING:
      out.v = r.read_string(field);
      break;
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) r.fail(field, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      uint32_t et = r.read<uint32_t>(field + " element type");
      if (!valid_value_type(et)) r.fail(field, "unknown array element type " + std::to_string(et));
      uint64_t n = r.read<uint64_t>(field + " element count");
      Array a;
      a.elem_type = static_cast<ValueType>(et);
      if (n > r.left() / min_encoded_size(a.elem_type))
        r.fail(field, "array of " + std::to_string(n) + " elements cannot fit in the " + std::to_string(r.left()) +
                          " bytes left in the file");
      a.items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) a.items.push_back(read_value(r, a.elem_type, field, depth + 1));
      out.v = std::move(a);
      break;
    }
  }
  return out;
}

// One tensor info: name, dimensions, type and data offset, each checked as it is read.
TensorInfo read_tensor_info(Reader& r, uint64_t i, uint64_t alignment) {
  TensorInfo t;
  t.name = r.read_string("tensor #" + std::to_string(i) + " name", kMaxNameLength);
  std::string field = "tensor '" + t.name + "'";
  uint32_t n_dims = r.read<uint32_t>(field + " dimension count");
  if (n_dims == 0 || n_dims > kMaxDims)
    r.fail(field, std::to_string(n_dims) + " dimensions (must be 1 to " + std::to_string(kMaxDims) + ")");
  t.n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t ne = r.read<uint64_t>(field + " dimension " + std::to_string(d));
    if (ne == 0 || ne > static_cast<uint64_t>(INT64_MAX))
      r.fail(field, "dimension " + std::to_string(d) + " is " + std::to_string(ne));
    if (t.n_elements > static_cast<uint64_t>(INT64_MAX) / ne)
      r.fail(field, "the product of the dimensions overflows 64 bits");
    t.n_elements *= ne;
    t.shape.push_back(ne);
  }
  uint32_t raw_type = r.read<uint32_t>(field + " type");
  auto traits = type_traits(raw_type);
  if (!traits) r.fail(field, "unknown ggml type " + std::to_string(raw_type));
  if (traits->block_size == 0)
    r.fail(field, "type " + std::string(traits->name) + " was removed from ggml; convert the model again");
  t.type = static_cast<GgmlType>(raw_type);
  if (t.shape[0] % traits->block_size != 0)
    r.fail(field, "row length " + std::to_string(t.shape[0]) + " is not a multiple of the " +
                      std::string(traits->name) + " block size " + std::to_string(traits->block_size));
  uint64_t blocks = t.n_elements / traits->block_size;
  if (blocks > UINT64_MAX / traits->type_size) r.fail(field, "byte size overflows 64 bits");
  t.n_bytes = blocks * traits->type_size;
  t.offset = r.read<uint64_t>(field + " offset");
  if (t.offset % alignment != 0)
    r.fail(field, "data offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment));
  return t;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < std::size(names) ? names[i] : "unknown";
}

bool Value::is_integer() const { return std::holds_alternative<uint64_t>(v) || std::holds_alternative<int64_t>(v); }
bool Value::is_number() const { return is_integer() || std::holds_alternative<double>(v); }

int64_t Value::as_int() const {
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  if (auto p = std::get_if<uint64_t>(&v)) {
    if (*p > static_cast<uint64_t>(INT64_MAX)) throw Error("integer value out of range");
    return static_cast<int64_t>(*p);
  }
  if (auto p = std::get_if<bool>(&v)) return *p;
  throw Error(std::string("expected an integer, found ") + std::string(value_type_name(type)));
}

uint64_t Value::as_uint() const {
  if (auto p = std::get_if<uint64_t>(&v)) return *p;
  int64_t i = as_int();
  if (i < 0) throw Error("expected a non-negative integer, found " + std::to_string(i));
  return static_cast<uint64_t>(i);
}

double Value::as_double() const {
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<uint64_t>(&v)) return static_cast<double>(*p);
  if (auto p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  throw Error(std::string("expected a number, found ") + std::string(value_type_name(type)));
}

bool Value::as_bool() const {
  if (auto p = std::get_if<bool>(&v)) return *p;
  if (is_integer()) return as_int() != 0;
  throw Error(std::string("expected a bool, found ") + std::string(value_type_name(type)));
}

const std::string& Value::as_string() const {
  if (auto p = std::get_if<std::string>(&v)) return *p;
  throw Error(std::string("expected a string, found ") + std::string(value_type_name(type)));
}

const Array& Value::as_array() const {
  if (auto p = std::get_if<Array>(&v)) return *p;
  throw Error(std::string("expected an array, found ") + std::string(value_type_name(type)));
}

std::string Value::to_display(size_t max_items) const {
  std::ostringstream os;
  if (auto p = std::get_if<uint64_t>(&v))
    os << *p;
  else if (auto p = std::get_if<int64_t>(&v))
    os << *p;
  else if (auto p = std::get_if<double>(&v))
    os << *p;
  else if (auto p = std::get_if<bool>(&v))
    os << (*p ? "true" : "false");
  else if (auto p = std::get_if<std::string>(&v)) {
    std::string s = p->size() > 60 ? p->substr(0, 57) + "..." : *p;
    for (char& c : s)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    os << '"' << s << '"';
  } else if (auto p = std::get_if<Array>(&v)) {
    os << "[" << value_type_name(p->elem_type) << " x " << p->items.size() << "]";
    if (!p->items.empty() && max_items > 0) {
      os << " ";
      for (size_t i = 0; i < p->items.size() && i < max_items; ++i) os << (i ? ", " : "") << p->items[i].to_display(0);
      if (p->items.size() > max_items) os << ", ...";
    }
  }
  return os.str();
}

GgufFile::GgufFile(const std::string& path) {
  open_one(resolve_model_path(path));
  if (find(kSplitCount) || find(kSplitNo)) open_other_parts();
}

void GgufFile::open_one(const std::string& path) {
  path_ = path;
  Part p;
  p.map = std::make_unique<MappedFile>(path);
  p.base = p.map->data();
  p.size = p.map->size();
  parts_.push_back(std::move(p));
  parse(parts_.back().base, parts_.back().size);
}

std::unique_ptr<GgufFile> GgufFile::from_memory(std::span<const uint8_t> bytes, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = std::move(name);
  f->owned_.assign(bytes.begin(), bytes.end());
  f->parts_.push_back({nullptr, f->owned_.data(), f->owned_.size(), 0});
  f->parse(f->owned_.data(), f->owned_.size());
  return f;
}

uint64_t GgufFile::file_size() const {
  uint64_t total = 0;
  for (const Part& p : parts_) total += p.size;
  return total;
}

void GgufFile::parse(const uint8_t* data, size_t size) {
  Reader r(data, size, path_);
  if (size < 4) r.fail("magic", "file is " + std::to_string(size) + " bytes, too short to be GGUF");
  uint32_t magic = r.read<uint32_t>("magic");
  if (magic != kMagic) r.fail("magic", "expected \"GGUF\" (0x46554747), found " + hex32(magic) + ": not a GGUF file");
  version_ = r.read<uint32_t>("version");
  if (version_ == 1) r.fail("version", "GGUF version 1 is obsolete; convert the model again with a current llama.cpp");
  if ((version_ & 0xffff) == 0 && version_ != 0)
    r.fail("version", "version " + hex32(version_) + " looks byte-swapped: big-endian GGUF files are not supported");
  if (version_ != 2 && version_ != 3)
    r.fail("version", "unsupported GGUF version " + std::to_string(version_) + " (supported: 2, 3)");
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  // Each metadata pair is at least 8 (key length) + 4 (type) + 1 bytes; each tensor info 8+4+8+4+8.
  if (n_kv > r.left() / 13)
    r.fail("metadata count",
           std::to_string(n_kv) + " pairs cannot fit in a file of " + std::to_string(size) + " bytes");
  if (n_tensors > r.left() / 32)
    r.fail("tensor count",
           std::to_string(n_tensors) + " tensors cannot fit in a file of " + std::to_string(size) + " bytes");

  kv_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = r.read_string("metadata key #" + std::to_string(i), kMaxNameLength);
    std::string field = "metadata '" + key + "'";
    if (kv_index_.count(key)) r.fail(field, "duplicate key");
    uint32_t t = r.read<uint32_t>(field + " type");
    if (!valid_value_type(t)) r.fail(field, "unknown value type " + std::to_string(t));
    Value v = read_value(r, static_cast<ValueType>(t), field, 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (!a->is_integer() || a->as_int() <= 0)
      throw Error(path_ + ": metadata 'general.alignment': must be a positive integer");
    uint64_t al = a->as_uint();
    if ((al & (al - 1)) != 0 || al > (1u << 20))
      throw Error(path_ + ": metadata 'general.alignment': " + std::to_string(al) +
                  " is not a power of two up to 1 MiB");
    alignment_ = al;
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t = read_tensor_info(r, i, alignment_);
    if (tensor_index_.count(t.name)) r.fail("tensor '" + t.name + "'", "duplicate tensor name");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  uint64_t pos = r.pos();
  const uint64_t data_offset = (pos + alignment_ - 1) / alignment_ * alignment_;
  parts_.back().data_offset = data_offset;
  if (n_tensors > 0 && data_offset > size)
    throw Error(path_ + ": data section: starts at byte " + std::to_string(data_offset) +
                " past the end of the file (" + std::to_string(size) + " bytes): file is truncated");
  uint64_t data_size = size > data_offset ? size - data_offset : 0;
  for (const auto& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      throw Error(path_ + ": tensor '" + t.name + "': data [" + std::to_string(t.offset) + ", " +
                  std::to_string(t.offset + t.n_bytes) + ") runs past the end of the data section (" +
                  std::to_string(data_size) + " bytes): file is truncated or corrupt");
  }
}

const Value* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Value& GgufFile::get(std::string_view key) const {
  if (const Value* v = find(key)) return *v;
  throw Error(path_ + ": metadata key '" + std::string(key) + "' is missing");
}

template <typename F>
static auto typed(const std::string& path, std::string_view key, const Value& v, F f) {
  try {
    return f(v);
  } catch (const Error& e) {
    throw Error(path + ": metadata '" + std::string(key) + "': " + e.what());
  }
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path_, key, *v, [](const Value& x) { return x.as_string(); });
}

std::string GgufFile::get_string(std::string_view key, std::string fallback) const {
  auto s = get_string(key);
  return s ? *s : fallback;
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path_, key, *v, [](const Value& x) { return x.as_int(); });
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path_, key, *v, [](const Value& x) { return x.as_double(); });
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path_, key, *v, [](const Value& x) { return x.as_bool(); });
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return {};
  return typed(path_, key, *v, [](const Value& x) {
    std::vector<std::string> out;
    const Array& a = x.as_array();
    out.reserve(a.items.size());
    for (const auto& item : a.items) out.push_back(item.as_string());
    return out;
  });
}

std::vector<double> GgufFile::get_number_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return {};
  return typed(path_, key, *v, [](const Value& x) {
    std::vector<double> out;
    const Array& a = x.as_array();
    out.reserve(a.items.size());
    for (const auto& item : a.items) out.push_back(item.as_double());
    return out;
  });
}

std::string GgufFile::arch_key(std::string_view suffix) const { return architecture() + "." + std::string(suffix); }

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& GgufFile::tensor(std::string_view name) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  throw Error(path_ + ": tensor '" + std::string(name) + "' is missing");
}

std::span<const uint8_t> GgufFile::tensor_data(const TensorInfo& t) const {
  const Part& p = parts_[t.part];
  return {p.base + p.data_offset + t.offset, t.n_bytes};
}

std::span<const uint8_t> GgufFile::tensor_bytes(const TensorInfo& t, uint64_t begin, uint64_t len) const {
  if (begin > t.n_bytes || len > t.n_bytes - begin)
    throw Error(path_ + ": tensor '" + t.name + "': byte range [" + std::to_string(begin) + ", " +
                std::to_string(begin + len) + ") is outside its " + std::to_string(t.n_bytes) + " bytes");
  const Part& p = parts_[t.part];
  return {p.base + p.data_offset + t.offset + begin, len};
}

}  // namespace clusterctl::gguf
