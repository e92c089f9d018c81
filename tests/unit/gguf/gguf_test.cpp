#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"

using namespace clusterctl;
using namespace clusterctl::gguf;

namespace {

// Builds GGUF images byte by byte, so each bad file below differs from a good one in one field.
struct Image {
  std::vector<uint8_t> b;
  template <typename T>
  Image& put(T v) {
    auto p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Image& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Image& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return put<uint32_t>(0x46554747).put(version).put(n_tensors).put(n_kv);
  }
  Image& kv_u32(const std::string& k, uint32_t v) { return str(k).put<uint32_t>(4).put(v); }
  Image& kv_str(const std::string& k, const std::string& v) { return str(k).put<uint32_t>(8).str(v); }
  Image& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) put(d);
    return put(type).put(offset);
  }
  Image& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Image& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

// A valid file: one metadata string, one 32-float tensor.
Image good() {
  Image im;
  im.header(3, 1, 1).kv_str("general.architecture", "llama").tensor("w", {32}, 0, 0).pad_to(32).zeros(128);
  return im;
}

std::string error_of(const Image& im) {
  try {
    GgufFile::from_memory(im.b, "bad.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(GgufReader, ReadsAGoodImage) {
  auto f = GgufFile::from_memory(good().b, "good.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->architecture(), "llama");
  ASSERT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->tensor("w").n_bytes, 128u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_EQ(f->tensor_bytes(f->tensor("w"), 64, 64).size(), 64u);
  EXPECT_THROW(f->tensor_bytes(f->tensor("w"), 64, 65), Error);
}

TEST(GgufReader, ReadsEveryValueTypeAndNestedArrays) {
  Image im;
  im.header(3, 0, 14);
  im.str("u8").put<uint32_t>(0).put<uint8_t>(200);
  im.str("i8").put<uint32_t>(1).put<int8_t>(-5);
  im.str("u16").put<uint32_t>(2).put<uint16_t>(60000);
  im.str("i16").put<uint32_t>(3).put<int16_t>(-30000);
  im.str("u32").put<uint32_t>(4).put<uint32_t>(4000000000u);
  im.str("i32").put<uint32_t>(5).put<int32_t>(-2000000000);
  im.str("f32").put<uint32_t>(6).put<float>(1.5f);
  im.str("bool").put<uint32_t>(7).put<uint8_t>(1);
  im.str("string").put<uint32_t>(8).str("hello");
  im.str("u64").put<uint32_t>(10).put<uint64_t>(1ull << 40);
  im.str("i64").put<uint32_t>(11).put<int64_t>(-(1ll << 40));
  im.str("f64").put<uint32_t>(12).put<double>(2.25);
  im.str("strings").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(2).str("a").str("bc");
  // An array of two arrays of i32.
  im.str("nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(2);
  im.put<uint32_t>(5).put<uint64_t>(1).put<int32_t>(7);
  im.put<uint32_t>(5).put<uint64_t>(2).put<int32_t>(8).put<int32_t>(9);
  auto f = GgufFile::from_memory(im.b, "types.gguf");
  EXPECT_EQ(f->get("u8").as_uint(), 200u);
  EXPECT_EQ(f->get("i8").as_int(), -5);
  EXPECT_EQ(f->get("u16").as_uint(), 60000u);
  EXPECT_EQ(f->get("i16").as_int(), -30000);
  EXPECT_EQ(f->get("u32").as_uint(), 4000000000u);
  EXPECT_EQ(f->get("i32").as_int(), -2000000000);
  EXPECT_DOUBLE_EQ(f->get("f32").as_double(), 1.5);
  EXPECT_TRUE(f->get("bool").as_bool());
  EXPECT_EQ(f->get("string").as_string(), "hello");
  EXPECT_EQ(f->get("u64").as_uint(), 1ull << 40);
  EXPECT_EQ(f->get("i64").as_int(), -(1ll << 40));
  EXPECT_DOUBLE_EQ(f->get("f64").as_double(), 2.25);
  EXPECT_EQ(f->get_string_array("strings"), (std::vector<std::string>{"a", "bc"}));
  const auto& nested = f->get("nested").as_array();
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(nested.items[1].as_array().items[1].as_int(), 9);
  EXPECT_THROW(f->get("string").as_int(), Error);
  EXPECT_THROW(f->get("missing"), Error);
}

TEST(GgufReader, HonoursGeneralAlignment) {
  Image im;
  im.header(3, 1, 1).kv_u32("general.alignment", 64).tensor("w", {32}, 0, 0).pad_to(64).zeros(128);
  auto f = GgufFile::from_memory(im.b, "aligned.gguf");
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
}

TEST(GgufReader, ReadsVersion2) {
  Image im;
  im.header(2, 0, 1).kv_str("general.architecture", "llama");
  EXPECT_EQ(GgufFile::from_memory(im.b, "v2.gguf")->version(), 2u);
}

TEST(GgufReader, KnowsEveryTypeByName) {
  EXPECT_EQ(type_traits(GgmlType::Q4_K).type_size, 144u);
  EXPECT_EQ(type_traits(GgmlType::Q6_K).type_size, 210u);
  EXPECT_EQ(type_traits(GgmlType::IQ4_XS).name, "IQ4_XS");
  EXPECT_EQ(type_traits(GgmlType::MXFP4).block_size, 32u);
  EXPECT_EQ(type_from_name("q8_0"), GgmlType::Q8_0);
  EXPECT_FALSE(type_from_name("Q4_2").has_value());  // retired
  EXPECT_EQ(row_bytes(GgmlType::Q4_0, 64), 36u);
  EXPECT_THROW(row_bytes(GgmlType::Q4_0, 48), Error);
}

// The hand-made bad files: each must fail with a message naming the file, the field and the fault.
struct BadCase {
  const char* what;
  std::function<Image()> make;
  const char* expected;  // a substring of the message
};

class BadFiles : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadFiles, FailWithAClearMessage) {
  std::string msg = error_of(GetParam().make());
  ASSERT_FALSE(msg.empty()) << GetParam().what << " was accepted";
  EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find(GetParam().expected), std::string::npos) << "message: " << msg;
}

const BadCase kBadCases[] = {
    {"empty", [] { return Image{}; }, "too short to be GGUF"},
    {"wrong magic",
     [] {
       Image im;
       im.put<uint32_t>(0x46554746).put<uint32_t>(3);
       return im;
     },
     "not a GGUF file"},
    {"version 1",
     [] {
       Image im;
       im.header(1, 0, 0);
       return im;
     },
     "version 1 is obsolete"},
    {"version 4",
     [] {
       Image im;
       im.header(4, 0, 0);
       return im;
     },
     "unsupported GGUF version 4"},
    {"big-endian",
     [] {
       Image im;
       im.header(0x03000000, 0, 0);
       return im;
     },
     "big-endian"},
    {"truncated header",
     [] {
       Image im;
       im.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint32_t>(0);
       return im;
     },
     "tensor count at byte 8: file is truncated"},
    {"absurd kv count",
     [] {
       Image im;
       im.header(3, 0, 1ull << 60);
       return im;
     },
     "metadata count"},
    {"absurd tensor count",
     [] {
       Image im;
       im.header(3, 1ull << 60, 0);
       return im;
     },
     "tensor count"},
    {"absurd string length",
     [] {
       Image im;
       im.header(3, 0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1ull << 62).zeros(64);
       return im;
     },
     "file is truncated"},
    {"key too long",
     [] {
       Image im;
       im.header(3, 0, 1).put<uint64_t>(1 << 20).zeros(1 << 20);
       return im;
     },
     "exceeds the limit"},
    {"unknown value type",
     [] {
       Image im;
       im.header(3, 0, 1).str("k").put<uint32_t>(13);
       return im;
     },
     "unknown value type 13"},
    {"bad bool",
     [] {
       Image im;
       im.header(3, 0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
       return im;
     },
     "neither 0 nor 1"},
    {"absurd array count",
     [] {
       Image im;
       im.header(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 61);
       return im;
     },
     "cannot fit"},
    {"arrays nested too deep",
     [] {
       Image im;
       im.header(3, 0, 1).str("k").put<uint32_t>(9);
       for (int i = 0; i < 12; ++i) im.put<uint32_t>(9).put<uint64_t>(1);
       im.put<uint32_t>(4).put<uint64_t>(0);
       return im;
     },
     "nested deeper"},
    {"duplicate key",
     [] {
       Image im;
       im.header(3, 0, 2).kv_u32("a", 1).kv_u32("a", 2);
       return im;
     },
     "duplicate key"},
    {"alignment not a power of two",
     [] {
       Image im;
       im.header(3, 0, 1).kv_u32("general.alignment", 48);
       return im;
     },
     "not a power of two"},
    {"zero dimensions",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {}, 0, 0).zeros(64);
       return im;
     },
     "0 dimensions"},
    {"five dimensions",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0);
       return im;
     },
     "5 dimensions"},
    {"zero-sized dimension",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {32, 0}, 0, 0);
       return im;
     },
     "dimension 1 is 0"},
    {"dimension product overflows",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {1ull << 32, 1ull << 32}, 0, 0);
       return im;
     },
     "overflows"},
    {"unknown tensor type",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {32}, 99, 0);
       return im;
     },
     "unknown ggml type 99"},
    {"retired tensor type",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {32}, 4, 0);
       return im;
     },
     "Q4_2 was removed"},
    {"row not a whole block",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {48}, 2, 0);
       return im;
     },
     "not a multiple of the Q4_0 block size"},
    {"misaligned offset",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {32}, 0, 4);
       return im;
     },
     "not aligned"},
    {"duplicate tensor",
     [] {
       Image im;
       im.header(3, 2, 0).tensor("w", {32}, 0, 0).tensor("w", {32}, 0, 128);
       return im;
     },
     "duplicate tensor name"},
    {"offset past the end",
     [] {
       Image im;
       im.header(3, 1, 0).tensor("w", {32}, 0, 1 << 20).pad_to(32).zeros(128);
       return im;
     },
     "runs past the end"},
    {"truncated data",
     [] {
       Image im = good();
       im.b.resize(im.b.size() - 1);
       return im;
     },
     "runs past the end"},
};

INSTANTIATE_TEST_SUITE_P(Corpus, BadFiles, ::testing::ValuesIn(kBadCases), [](const auto& info) {
  std::string n = info.param.what;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

TEST(GgufReader, EveryTruncationOfAGoodFileFailsCleanly) {
  Image im = good();
  for (size_t n = 0; n < im.b.size(); ++n) {
    std::vector<uint8_t> part(im.b.begin(), im.b.begin() + n);
    EXPECT_THROW(GgufFile::from_memory(part, "cut.gguf"), Error) << "prefix of " << n << " bytes";
  }
}

TEST(GgufReader, MissingFileNamesThePath) {
  try {
    GgufFile f("/nonexistent/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf: cannot open"), std::string::npos);
  }
}

TEST(GgufReader, Stories260K) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  GgufFile f(path);
  auto h = model::HParams::from_gguf(f);
  EXPECT_EQ(h.arch, "llama");
  EXPECT_EQ(h.n_embd, 64u);
  EXPECT_EQ(h.n_layer, 5u);
  EXPECT_EQ(h.n_head, 8u);
  EXPECT_EQ(h.n_head_kv, 4u);
  EXPECT_EQ(h.n_vocab, 512u);
  EXPECT_EQ(h.n_ff, 172u);
  EXPECT_EQ(f.tensors().size(), 48u);
  const auto& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(emb.shape, (std::vector<uint64_t>{64, 512}));
  EXPECT_EQ(emb.n_bytes, 64u * 512u * 4u);
}

TEST(GgufReader, LlamaTinyRandomHasF16Tensors) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/llama-2-tiny-random.gguf");
  GgufFile f(path);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 32000u);
  EXPECT_EQ(f.tensor("token_embd.weight").type, GgmlType::F16);
}
