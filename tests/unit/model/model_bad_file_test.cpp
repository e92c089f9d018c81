// Bad model files are refused with one clusterctl::Error that names the cause: copies of
// stories260K rewritten with the GGUF writer, each with one defect.
#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_writer.h"
#include "worker/kernels/blocks.h"
#include "worker/model/engine.h"
#include "worker/model/synth.h"

namespace clusterctl::model {
namespace {

namespace fs = std::filesystem;

// Writes a copy of `src` to a temporary file; `edit` may change the metadata and decide per
// tensor (return false to leave it out; it may add a replacement itself).
std::string write_variant(const gguf::GgufFile& src, const std::string& name,
                          const std::function<void(gguf::GgufWriter&)>& edit_kv,
                          const std::function<bool(gguf::GgufWriter&, const gguf::TensorInfo&)>& keep_tensor) {
  gguf::GgufWriter w;
  w.copy_kv(src);
  edit_kv(w);
  for (const auto& t : src.tensors())
    if (keep_tensor(w, t)) w.copy_tensor(src, t);
  const std::string path = (fs::temp_directory_path() / ("clusterctl_model_bad_" + name + ".gguf")).string();
  w.write(path);
  return path;
}

// Loads `path` and returns the error message ("" when it loaded).
std::string load_error(const std::string& path) {
  try {
    gguf::GgufFile f(path);
    auto comm = collectives::make_local_communicator();
    Engine e(f, *comm, {.threads = 1});
  } catch (const Error& err) {
    return err.what();
  }
  return "";
}

auto keep_all = [](gguf::GgufWriter&, const gguf::TensorInfo&) { return true; };
auto no_kv_change = [](gguf::GgufWriter&) {};

TEST(ModelBadFile, UnmodifiedCopyLoads) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile src(path);
  auto p = write_variant(src, "copy", no_kv_change, keep_all);
  EXPECT_EQ(load_error(p), "");
  fs::remove(p);
}

TEST(ModelBadFile, UnsupportedArchitectureIsNamed) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile src(path);
  auto p = write_variant(
      src, "arch", [](gguf::GgufWriter& w) { w.set_kv("general.architecture", gguf::value_string("mamba")); },
      keep_all);
  auto msg = load_error(p);
  EXPECT_NE(msg.find("'mamba'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
  fs::remove(p);
}

// stories260K (a dense llama) claiming experts: the router and expert tensors it lacks are named,
// and an impossible expert count is refused before any tensor is read.
TEST(ModelBadFile, ExpertMetadataWithoutExpertsIsNamed) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile src(path);
  auto p = write_variant(
      src, "experts",
      [](gguf::GgufWriter& w) {
        w.set_kv("llama.expert_count", gguf::value_u32(8));
        w.set_kv("llama.expert_used_count", gguf::value_u32(2));
      },
      keep_all);
  auto msg = load_error(p);
  EXPECT_NE(msg.find("'blk.0.ffn_gate_inp.weight' is missing"), std::string::npos) << msg;
  fs::remove(p);
  p = write_variant(
      src, "experts_used",
      [](gguf::GgufWriter& w) {
        w.set_kv("llama.expert_count", gguf::value_u32(4));
        w.set_kv("llama.expert_used_count", gguf::value_u32(6));
      },
      keep_all);
  msg = load_error(p);
  EXPECT_NE(msg.find("'llama.expert_used_count' = 6 exceeds the 4 experts"), std::string::npos) << msg;
  fs::remove(p);
  p = write_variant(
      src, "qwen3moe",
      [](gguf::GgufWriter& w) {
        w.set_kv("general.architecture", gguf::value_string("qwen3moe"));
        for (const auto& [k, v] :
             std::vector<std::pair<std::string, gguf::Value>>{{"qwen3moe.embedding_length", gguf::value_u32(64)},
                                                              {"qwen3moe.block_count", gguf::value_u32(5)},
                                                              {"qwen3moe.attention.head_count", gguf::value_u32(8)},
                                                              {"qwen3moe.feed_forward_length", gguf::value_u32(172)}})
          w.set_kv(k, v);
      },
      keep_all);
  msg = load_error(p);
  EXPECT_NE(msg.find("a qwen3moe model needs 'qwen3moe.expert_count'"), std::string::npos) << msg;
  fs::remove(p);
}

TEST(ModelBadFile, MissingTensorIsNamed) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile src(path);
  auto p = write_variant(src, "missing", no_kv_change,
                         [](gguf::GgufWriter&, const gguf::TensorInfo& t) { return t.name != "blk.2.ffn_up.weight"; });
  auto msg = load_error(p);
  EXPECT_NE(msg.find("'blk.2.ffn_up.weight' is missing"), std::string::npos) << msg;
  fs::remove(p);
}

TEST(ModelBadFile, ShapeMismatchIsNamed) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile src(path);
  // attn_k gets attn_q's bytes and shape: 64 rows instead of 4 KV heads x 8 = 32.
  auto p = write_variant(src, "shape", no_kv_change, [&](gguf::GgufWriter& w, const gguf::TensorInfo& t) {
    if (t.name != "blk.1.attn_k.weight") return true;
    w.copy_tensor(src, src.tensor("blk.1.attn_q.weight"), t.name);
    return false;
  });
  auto msg = load_error(p);
  EXPECT_NE(msg.find("'blk.1.attn_k.weight' has shape [64, 64], expected [64, 32]"), std::string::npos) << msg;
  fs::remove(p);
}

TEST(ModelBadFile, UncomputableTypeIsNamed) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile src(path);
  std::vector<uint8_t> zeros(64 * 64);
  auto p = write_variant(src, "type", no_kv_change, [&](gguf::GgufWriter& w, const gguf::TensorInfo& t) {
    if (t.name != "blk.0.attn_q.weight") return true;
    w.add_tensor(t.name, gguf::GgmlType::I8, {64, 64}, zeros);
    return false;
  });
  auto msg = load_error(p);
  EXPECT_NE(msg.find("type I8"), std::string::npos) << msg;
  fs::remove(p);
}

// A block scale that decodes to NaN is refused at load with the tensor's name, here in an IQ1_M
// file (its fp16 scale is the top nibbles of the four scale words) and an IQ2_XS one.
TEST(ModelBadFile, NanBlockScaleIsRefusedWithTheTensorName) {
  for (const auto& [type, set_nan] : std::vector<std::pair<std::string, std::function<void(uint8_t*)>>>{
           {"IQ1_M",
            [](uint8_t* block) {
              for (int k = 0; k < 4; ++k) block[offsetof(kernels::block_iq1_m, scales) + 2 * k + 1] |= 0xf0;
            }},
           {"IQ2_XS", [](uint8_t* block) { block[0] = 0x00, block[1] = 0x7e; }}}) {
    SynthOptions o;
    o.shape = "tiny", o.type = type, o.pure = true, o.threads = 1;
    o.out_path = (fs::temp_directory_path() / ("clusterctl_model_bad_src_" + type + ".gguf")).string();
    synth_model(o);
    gguf::GgufFile src(o.out_path);
    ASSERT_EQ(load_error(o.out_path), "") << type;
    std::vector<uint8_t> bytes;
    auto p = write_variant(src, "nan_" + type, no_kv_change, [&](gguf::GgufWriter& w, const gguf::TensorInfo& t) {
      if (t.name != "blk.1.ffn_down.weight") return true;
      const auto data = src.tensor_data(t);
      bytes.assign(data.begin(), data.end());
      set_nan(bytes.data() + t.row_bytes() * 3);  // row 3, block 0
      w.add_tensor(t.name, t.type, t.shape, bytes);
      return false;
    });
    auto msg = load_error(p);
    for (const char* part : {"'blk.1.ffn_down.weight'", "row 3", "block 0", "NaN"})
      EXPECT_NE(msg.find(part), std::string::npos) << type << ": " << part << " missing from: " << msg;
    fs::remove(p);
    fs::remove(o.out_path);
  }
}

}  // namespace
}  // namespace clusterctl::model
