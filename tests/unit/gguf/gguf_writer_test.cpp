// GgufWriter: what it writes, GgufFile reads back: every metadata type, arrays, alignment,
// many tensors, streamed data, copies of real files; and it never leaves a half-written file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/gguf/gguf_writer.h"

namespace clusterctl::gguf {
namespace {

namespace fs = std::filesystem;

class GgufWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gguf_writer_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Values compare by type and content (floats exactly: the writer must not lose bits).
void expect_same_value(const Value& want, const Value& got, const std::string& key) {
  ASSERT_EQ(want.type, got.type) << key;
  if (want.type == ValueType::ARRAY) {
    const Array& a = want.as_array();
    const Array& b = got.as_array();
    ASSERT_EQ(a.elem_type, b.elem_type) << key;
    ASSERT_EQ(a.items.size(), b.items.size()) << key;
    for (size_t i = 0; i < a.items.size(); ++i)
      expect_same_value(a.items[i], b.items[i], key + "[" + std::to_string(i) + "]");
  } else if (want.type == ValueType::STRING) {
    EXPECT_EQ(want.as_string(), got.as_string()) << key;
  } else if (want.type == ValueType::BOOL) {
    EXPECT_EQ(want.as_bool(), got.as_bool()) << key;
  } else if (want.type == ValueType::F32 || want.type == ValueType::F64) {
    EXPECT_EQ(want.as_double(), got.as_double()) << key;
  } else if (std::holds_alternative<int64_t>(want.v)) {
    EXPECT_EQ(want.as_int(), got.as_int()) << key;
  } else {
    EXPECT_EQ(want.as_uint(), got.as_uint()) << key;
  }
}

TEST_F(GgufWriterTest, EveryValueTypeRoundTrips) {
  std::vector<std::pair<std::string, Value>> kv = {
      {"t.u8", value_u8(255)},
      {"t.i8", value_i8(-128)},
      {"t.u16", value_u16(65535)},
      {"t.i16", value_i16(-32768)},
      {"t.u32", value_u32(4294967295u)},
      {"t.i32", value_i32(std::numeric_limits<int32_t>::min())},
      {"t.u64", value_u64(std::numeric_limits<uint64_t>::max())},
      {"t.i64", value_i64(std::numeric_limits<int64_t>::min())},
      {"t.f32", value_f32(1e-5f)},
      {"t.f64", value_f64(-0.1)},
      {"t.bool_true", value_bool(true)},
      {"t.bool_false", value_bool(false)},
      {"t.string", value_string("héllo\nwörld \xe2\x96\x81")},
      {"t.empty_string", value_string("")},
      {"t.strings", value_string_array({"a", "", "ccc", std::string("nul\0in", 6)})},
      {"t.i32s", value_i32_array({1, -2, 3})},
      {"t.f32s", value_f32_array({0.5f, -1e30f, 3.25f})},
      {"t.u8s", value_array(ValueType::U8, {value_u8(1), value_u8(2)})},
      {"t.bools", value_array(ValueType::BOOL, {value_bool(true), value_bool(false)})},
      {"t.u64s", value_array(ValueType::U64, {value_u64(1ull << 63)})},
      {"t.f64s", value_array(ValueType::F64, {value_f64(1.0 / 3)})},
      {"t.empty", value_array(ValueType::I16, {})},
      {"t.nested", value_array(ValueType::ARRAY, {value_i32_array({1, 2}), value_i32_array({})})},
  };
  GgufWriter w;
  for (const auto& [k, v] : kv) w.add_kv(k, v);
  w.write(path("kv.gguf"));
  GgufFile f(path("kv.gguf"));
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.metadata().size(), kv.size());
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, kv[i].first) << "order is kept";
    expect_same_value(kv[i].second, f.metadata()[i].second, kv[i].first);
  }
  EXPECT_TRUE(f.tensors().empty());
}

TEST_F(GgufWriterTest, SetKvReplacesInPlace) {
  GgufWriter w;
  w.add_kv("a", value_u32(1));
  w.add_kv("b", value_u32(2));
  w.set_kv("a", value_string("one"));
  EXPECT_THROW(w.add_kv("b", value_u32(3)), Error);
  w.write(path("kv.gguf"));
  GgufFile f(path("kv.gguf"));
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].first, "a");
  EXPECT_EQ(f.get("a").as_string(), "one");
}

TEST_F(GgufWriterTest, ManyTensorsOfEveryTypeRoundTrip) {
  struct T {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> bytes;
  };
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                            GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                            GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::I32};
  std::vector<T> ts;
  std::mt19937 rng(3);
  for (int i = 0; i < 240; ++i) {
    const GgmlType ty = types[i % std::size(types)];
    const uint64_t bs = type_traits(ty).block_size;
    std::vector<uint64_t> shape{bs * (1 + rng() % 5)};
    for (uint32_t d = 1, nd = 1 + rng() % 4; d < nd; ++d) shape.push_back(1 + rng() % 3);
    uint64_t n = 1;
    for (auto d : shape) n *= d;
    const uint64_t bytes = n / bs * type_traits(ty).type_size;
    std::string name = "blk.";  // built piecewise: GCC 12 warns falsely on "literal" + std::string here
    name += std::to_string(i);
    name += ".weight";
    ts.push_back({name, ty, shape, pattern(bytes, i)});
  }
  for (uint64_t alignment : {32u, 64u, 4096u}) {
    GgufWriter w(alignment);
    w.add_kv("general.architecture", value_string("test"));
    for (const auto& t : ts) w.add_tensor(t.name, t.type, t.shape, std::span<const uint8_t>(t.bytes));
    const std::string p = path("many" + std::to_string(alignment) + ".gguf");
    const uint64_t size = w.write(p);
    EXPECT_EQ(size, fs::file_size(p));
    EXPECT_EQ(size % alignment, 0u) << "the end is padded like ggml's writer does";
    GgufFile f(p);
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    if (alignment != 32) {
      EXPECT_EQ(f.get("general.alignment").as_uint(), alignment);
    }
    ASSERT_EQ(f.tensors().size(), ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      const TensorInfo& got = f.tensors()[i];
      EXPECT_EQ(got.name, ts[i].name);
      EXPECT_EQ(got.type, ts[i].type);
      EXPECT_EQ(got.shape, ts[i].shape);
      EXPECT_EQ(got.offset % alignment, 0u);
      auto data = f.tensor_data(got);
      ASSERT_EQ(data.size(), ts[i].bytes.size()) << got.name;
      EXPECT_TRUE(std::equal(data.begin(), data.end(), ts[i].bytes.begin())) << got.name;
    }
  }
}

// A large tensor is pulled from its source in chunks of whole rows, in order, and never whole.
TEST_F(GgufWriterTest, StreamsLargeTensorsInRowChunks) {
  const uint64_t cols = 4096, rows = 2048;  // 32 MiB of F32
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  GgufWriter w;
  w.add_tensor("big", GgmlType::F32, {cols, rows}, [&](uint64_t first, uint64_t n, uint8_t* out) {
    calls.emplace_back(first, n);
    auto* f = reinterpret_cast<float*>(out);
    for (uint64_t r = 0; r < n; ++r)
      for (uint64_t c = 0; c < cols; ++c) f[r * cols + c] = static_cast<float>((first + r) * 7 + c % 5);
  });
  w.write(path("big.gguf"));
  ASSERT_GT(calls.size(), 1u);
  uint64_t next = 0;
  for (auto [first, n] : calls) {
    EXPECT_EQ(first, next);
    EXPECT_LT(n, rows);
    next += n;
  }
  EXPECT_EQ(next, rows);
  GgufFile f(path("big.gguf"));
  auto data = f.tensor_data(f.tensor("big"));
  const auto* fl = reinterpret_cast<const float*>(data.data());
  for (uint64_t r : {uint64_t{0}, uint64_t{1}, uint64_t{1000}, rows - 1})
    for (uint64_t c : {uint64_t{0}, uint64_t{3}, cols - 1})
      ASSERT_EQ(fl[r * cols + c], static_cast<float>(r * 7 + c % 5));
}

TEST_F(GgufWriterTest, FailedWriteLeavesNoFileAndKeepsTheOldOne) {
  const std::string p = path("model.gguf");
  {
    std::ofstream old(p);
    old << "previous contents";
  }
  GgufWriter w;
  w.add_tensor("ok", GgmlType::F32, {32}, [](uint64_t, uint64_t n, uint8_t* out) { std::memset(out, 0, n * 128); });
  w.add_tensor("fails", GgmlType::F32, {32}, [](uint64_t, uint64_t, uint8_t*) { throw Error("source failed"); });
  EXPECT_THROW(w.write(p), Error);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  EXPECT_EQ(s, "previous contents");
}

TEST_F(GgufWriterTest, UnwritableDestinationIsAClearError) {
  GgufWriter w;
  try {
    w.write(path("no/such/dir/model.gguf"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/model.gguf.tmp"), std::string::npos) << e.what();
  }
}

TEST_F(GgufWriterTest, RejectsMalformedInput) {
  GgufWriter w;
  EXPECT_THROW(GgufWriter(48), Error);
  EXPECT_THROW(w.add_kv("", value_u8(1)), Error);
  EXPECT_THROW(w.add_kv("k", Value{ValueType::U8, uint64_t{300}}), Error);
  EXPECT_THROW(w.add_kv("k", Value{ValueType::I8, int64_t{-200}}), Error);
  EXPECT_THROW(w.add_kv("k", Value{ValueType::STRING, uint64_t{1}}), Error);
  EXPECT_THROW(w.add_kv("k", Value{ValueType::ARRAY, Array{ValueType::U8, {value_string("x")}}}), Error);
  EXPECT_THROW(value_array(ValueType::U32, {value_i32(1)}), Error);
  std::vector<uint8_t> buf(1024);
  std::span<const uint8_t> bytes(buf.data(), 128);
  w.add_tensor("a", GgmlType::F32, {32}, bytes);
  EXPECT_THROW(w.add_tensor("a", GgmlType::F32, {32}, bytes), Error);              // duplicate
  EXPECT_THROW(w.add_tensor("b", GgmlType::Q4_0, {33}, bytes), Error);             // not whole blocks
  EXPECT_THROW(w.add_tensor("c", GgmlType::F32, {}, bytes), Error);                // no dimensions
  EXPECT_THROW(w.add_tensor("d", GgmlType::F32, {1, 1, 1, 1, 32}, bytes), Error);  // 5 dimensions
  EXPECT_THROW(w.add_tensor("e", GgmlType::F32, {0}, bytes), Error);               // empty
  EXPECT_THROW(w.add_tensor("f", GgmlType::F32, {64}, bytes), Error);              // wrong byte count
  EXPECT_THROW(w.add_tensor("g", GgmlType::Q4_K, {256}, TensorSource{}), Error);   // no source
  try {
    w.add_tensor("h", GgmlType::Q4_0, {48}, bytes);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'h'"), std::string::npos) << e.what();
  }
  // The refused tensors left no trace: the file holds exactly the one good tensor.
  ASSERT_EQ(w.tensors().size(), 1u);
  w.write(path("after_errors.gguf"));
  GgufFile f(path("after_errors.gguf"));
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].name, "a");
}

// Copying every key and tensor of a real model gives a file GgufFile reads as the same model.
TEST_F(GgufWriterTest, CopiesARealModel) {
  CLUSTERCTL_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  GgufFile src(model_path);
  GgufWriter w;
  w.copy_kv(src);
  for (const auto& t : src.tensors()) w.copy_tensor(src, t);
  w.write(path("copy.gguf"));
  GgufFile dst(path("copy.gguf"));
  ASSERT_EQ(dst.metadata().size(), src.metadata().size());
  for (size_t i = 0; i < src.metadata().size(); ++i) {
    EXPECT_EQ(dst.metadata()[i].first, src.metadata()[i].first);
    expect_same_value(src.metadata()[i].second, dst.metadata()[i].second, src.metadata()[i].first);
  }
  ASSERT_EQ(dst.tensors().size(), src.tensors().size());
  for (size_t i = 0; i < src.tensors().size(); ++i) {
    const auto& a = src.tensors()[i];
    const auto& b = dst.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.shape, b.shape);
    auto da = src.tensor_data(a), db = dst.tensor_data(b);
    EXPECT_TRUE(std::equal(da.begin(), da.end(), db.begin(), db.end())) << a.name;
  }
}

// What synth does with a vocabulary file: copy only tokenizer.* keys.
TEST_F(GgufWriterTest, CopiesTokenizerMetadataFromAVocabFile) {
  CLUSTERCTL_REQUIRE_SHARED(vocab_path, "testdata/tokenizer/ggml-vocab-llama-bpe.gguf");
  GgufFile vocab(vocab_path);
  GgufWriter w;
  w.add_kv("general.architecture", value_string("llama"));
  w.copy_kv(vocab, [](std::string_view k) { return k.starts_with("tokenizer."); });
  w.write(path("tok.gguf"));
  GgufFile f(path("tok.gguf"));
  size_t copied = 0;
  for (const auto& [k, v] : vocab.metadata()) {
    if (!k.starts_with("tokenizer.")) continue;
    ++copied;
    ASSERT_NE(f.find(k), nullptr) << k;
    expect_same_value(v, *f.find(k), k);
  }
  EXPECT_GT(copied, 3u);
  EXPECT_EQ(f.metadata().size(), copied + 1);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 128256u);
}

}  // namespace
}  // namespace clusterctl::gguf
