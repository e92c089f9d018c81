#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "worker/common/mapped_file.h"
#include "worker/gguf/ggml_types.h"

namespace clusterctl::gguf {

// Metadata value types, numbered as in the GGUF specification.
enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::U8;
  std::vector<Value> items;
};

// One metadata value. Integers of every width are held as int64/uint64, floats as double;
// `type` keeps the width the file used so a writer can reproduce it.
struct Value {
  ValueType type = ValueType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> v;

  bool is_integer() const;
  bool is_number() const;
  int64_t as_int() const;    // throws unless an integer type (or bool)
  uint64_t as_uint() const;  // throws unless a non-negative integer
  double as_double() const;  // any number
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  std::string to_display(size_t max_items = 8) const;  // short human form for `inspect`
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<uint64_t> shape;  // ggml order: shape[0] is the contiguous (row) dimension
  uint64_t offset = 0;          // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint32_t part = 0;  // the part of a split model (gguf_split.h) holding its data

  uint64_t rows() const { return n_elements / (shape.empty() ? 1 : shape[0]); }
  uint64_t row_bytes() const { return rows() ? n_bytes / rows() : 0; }
};

// A GGUF file (versions 2 and 3), validated on open and memory-mapped. Bad files throw
// clusterctl::Error with a message naming the file, the field and what is wrong. A split model
// (gguf_split.h) is opened by its first part or its folder: every part is mapped, the metadata is
// the first part's and the tensors are all the parts'.
class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  // Parses an in-memory image (the fuzzer's entry point); `name` stands in for a path in errors.
  static std::unique_ptr<GgufFile> from_memory(std::span<const uint8_t> bytes, std::string name);

  const std::string& path() const { return path_; }  // of the first part
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return parts_.front().data_offset; }  // of the first part
  uint64_t file_size() const;                                          // of all parts
  size_t part_count() const { return parts_.size(); }
  // The first part's header: every byte before its data section.
  std::span<const uint8_t> header() const { return {parts_.front().base, parts_.front().data_offset}; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  const Value& get(std::string_view key) const;  // throws naming the missing key
  std::string get_string(std::string_view key, std::string fallback) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<double> get_number_array(std::string_view key) const;
  std::string architecture() const { return get_string("general.architecture", ""); }
  // "<arch>.<suffix>", e.g. arch_key("block_count") -> "llama.block_count".
  std::string arch_key(std::string_view suffix) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws naming the missing tensor

  // The bytes of a tensor, or of [begin, begin+len) of it, straight from the map:
  // pages outside the range are never touched.
  std::span<const uint8_t> tensor_data(const TensorInfo& t) const;
  std::span<const uint8_t> tensor_bytes(const TensorInfo& t, uint64_t begin, uint64_t len) const;

 private:
  GgufFile() = default;
  void open_one(const std::string& path);  // maps and parses one file as parts_[0]
  void parse(const uint8_t* data, size_t size);
  void open_other_parts();  // gguf_split.cpp

  struct Part {
    std::unique_ptr<MappedFile> map;  // null for from_memory
    const uint8_t* base = nullptr;
    uint64_t size = 0;
    uint64_t data_offset = 0;
  };
  std::string path_;
  std::vector<Part> parts_;
  std::vector<uint8_t> owned_;  // from_memory copies the image here
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace clusterctl::gguf
