#pragma once
// Writes GGUF (version 3) files: metadata, tensor infos, aligned tensor data. Tensor bytes are
// pulled from a source a chunk of rows at a time while writing, so a model is never held in
// memory whole; the file appears under its name only once complete (written as NAME.tmp, then renamed).
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "worker/gguf/gguf_file.h"

namespace clusterctl::gguf {

// Builders for metadata values of each GGUF type.
Value value_u8(uint8_t v);
Value value_i8(int8_t v);
Value value_u16(uint16_t v);
Value value_i16(int16_t v);
Value value_u32(uint32_t v);
Value value_i32(int32_t v);
Value value_u64(uint64_t v);
Value value_i64(int64_t v);
Value value_f32(float v);
Value value_f64(double v);
Value value_bool(bool v);
Value value_string(std::string v);
Value value_array(ValueType elem_type, std::vector<Value> items);  // items must all be elem_type
Value value_string_array(const std::vector<std::string>& items);
Value value_i32_array(const std::vector<int32_t>& items);
Value value_f32_array(const std::vector<float>& items);

// Fills `out` with the bytes of rows [first_row, first_row + n_rows) of a tensor
// (a row is shape[0] elements, i.e. row_bytes(type, shape[0]) bytes).
using TensorSource = std::function<void(uint64_t first_row, uint64_t n_rows, uint8_t* out)>;

class GgufWriter {
 public:
  // alignment: of the data section and every tensor in it; a power of two (GGUF default 32).
  explicit GgufWriter(uint64_t alignment = 32);

  // Metadata, written in the order added. Throws on a duplicate key or a malformed value.
  void add_kv(std::string key, Value value);
  // Adds, or replaces the value of an existing key in place.
  void set_kv(std::string key, Value value);
  bool has_kv(std::string_view key) const { return kv_index_.count(key) != 0; }
  const Value* find_kv(std::string_view key) const;
  // Copies another file's metadata pairs whose keys pass `keep` (all when empty), in its order.
  // Keys already present are replaced.
  void copy_kv(const GgufFile& from, const std::function<bool(std::string_view key)>& keep = {});

  // Tensors, laid out in the order added. shape is in ggml order (shape[0] = row length).
  void add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, TensorSource source);
  // The bytes are in memory already; they must stay valid until write() returns.
  void add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, std::span<const uint8_t> bytes);
  // A tensor of another open file, copied as is (optionally renamed); `from` must outlive write().
  void copy_tensor(const GgufFile& from, const TensorInfo& t, std::string new_name = "");

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  uint64_t alignment() const { return alignment_; }
  // Sparse: write() lays out the header and leaves the tensor data a hole (reads as zeros, uses no
  // disk): a full-size model's file for planning a cluster, not for running it.
  void set_sparse(bool sparse) { sparse_ = sparse; }

  // Called after each tensor's data is written (index into tensors(), bytes written so far, total).
  using Progress = std::function<void(size_t tensor_index, uint64_t bytes_done, uint64_t bytes_total)>;
  // Writes path + ".tmp" and renames it to path; on failure removes the temporary and throws
  // clusterctl::Error. Returns the file size. May be called more than once.
  uint64_t write(const std::string& path, const Progress& progress = {}) const;
  // Writes the model as `parts` files PREFIX-0000K-of-0000N.gguf (PREFIX: `path` less ".gguf"), as
  // llama.cpp's gguf-split does: the first holds the metadata, each part its run of the tensors
  // (about equal bytes, in order) and split.{no,count,tensors.count}. All parts or none are left.
  // Returns their paths.
  std::vector<std::string> write_split(const std::string& path, int parts, const Progress& progress = {}) const;

  // The header bytes (everything before the data section, without the final padding).
  std::vector<uint8_t> encode_header() const;

 private:
  void check_value(const std::string& key, const Value& v, int depth) const;

  uint64_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;  // offsets relative to the data section
  std::vector<TensorSource> sources_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  uint64_t data_size_ = 0;
  bool sparse_ = false;
};

}  // namespace clusterctl::gguf
