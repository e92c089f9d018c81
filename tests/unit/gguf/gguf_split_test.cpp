// Split GGUF models (gguf_split.h): what GgufWriter::write_split writes, GgufFile opens by its
// first part or folder as the one model it came from; every broken set of parts is named.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/gguf/gguf_split.h"
#include "worker/gguf/gguf_writer.h"

namespace clusterctl::gguf {
namespace {

namespace fs = std::filesystem;

class GgufSplit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gguf_split_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Seven tensors of different sizes, each filled from its own seed.
  GgufWriter model(uint32_t seed = 1) {
    GgufWriter w;
    w.add_kv("general.architecture", value_string("llama"));
    w.add_kv("general.name", value_string("split test"));
    for (int i = 0; i < 7; ++i) {
      auto& bytes = data_.emplace_back(static_cast<size_t>(4096 * (i % 3 + 1)));
      std::mt19937 rng(seed * 100 + i);
      for (auto& b : bytes) b = static_cast<uint8_t>(rng());
      w.add_tensor("t" + std::to_string(i), GgmlType::F32, {bytes.size() / 4}, std::span<const uint8_t>(bytes));
    }
    return w;
  }
  fs::path dir_;
  std::vector<std::vector<uint8_t>> data_;
};

void expect_same_model(const GgufFile& a, const GgufFile& b) {
  EXPECT_EQ(a.get_string("general.name", ""), b.get_string("general.name", ""));
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const TensorInfo* u = b.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.shape, u->shape) << t.name;
    const auto x = a.tensor_data(t), y = b.tensor_data(*u);
    ASSERT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << t.name;
  }
}

TEST(SplitPath, NamesAsGgufSplitDoes) {
  EXPECT_EQ(split_path("m/model", 2, 13), "m/model-00002-of-00013.gguf");
  const auto s = parse_split_path("m/model-00002-of-00013.gguf");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->prefix, "m/model");
  EXPECT_EQ(s->part, 2);
  EXPECT_EQ(s->count, 13);
  EXPECT_FALSE(parse_split_path("model.gguf"));
  EXPECT_FALSE(parse_split_path("model-00004-of-00003.gguf"));
  EXPECT_FALSE(parse_split_path("model-0001-of-00003.gguf"));
}

TEST_F(GgufSplit, ThreePartsOpenAsTheWholeFileByFirstPartOrFolder) {
  GgufWriter w = model();
  w.write(path("whole.gguf"));
  fs::create_directories(dir_ / "parts");
  const auto paths = w.write_split(path("parts/m.gguf"), 3);
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[2], path("parts/m-00003-of-00003.gguf"));
  GgufFile whole(path("whole.gguf"));
  GgufFile first(paths[0]);
  EXPECT_EQ(first.part_count(), 3u);
  expect_same_model(whole, first);
  GgufFile folder(path("parts"));
  EXPECT_EQ(folder.path(), paths[0]);
  expect_same_model(whole, folder);
  // Every part holds tensors, the first the metadata, the others only the split keys.
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(first.tensors().end() != std::find_if(first.tensors().begin(), first.tensors().end(),
                                                    [&](const TensorInfo& t) { return t.part == uint32_t(k); }),
              true)
        << "part " << k + 1 << " holds no tensor";
  }
}

TEST_F(GgufSplit, APartOtherThanTheFirstNamesTheFirst) {
  model().write_split(path("m.gguf"), 3);
  try {
    GgufFile f(path("m-00002-of-00003.gguf"));
    FAIL() << "opened part 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("part 2 of 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("m-00001-of-00003.gguf"), std::string::npos) << e.what();
  }
}

TEST_F(GgufSplit, AMissingPartIsNamedWithItsNumber) {
  model().write_split(path("m.gguf"), 3);
  fs::remove(path("m-00003-of-00003.gguf"));
  try {
    GgufFile f(path("m-00001-of-00003.gguf"));
    FAIL() << "opened a model without its part 3";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("part 3 of 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("is missing"), std::string::npos) << e.what();
  }
}

TEST_F(GgufSplit, APartOfAnotherDownloadIsRefused) {
  // Part 2 of a 4-part cut of the same model renamed into a 3-part set: it says so.
  model().write_split(path("m.gguf"), 3);
  fs::create_directories(dir_ / "other");
  model().write_split(path("other/m.gguf"), 4);
  fs::copy_file(path("other/m-00002-of-00004.gguf"), path("m-00002-of-00003.gguf"),
                fs::copy_options::overwrite_existing);
  try {
    GgufFile f(path("m-00001-of-00003.gguf"));
    FAIL() << "opened a mismatched part";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("part 2 of 4, not part 2 of 3"), std::string::npos) << e.what();
  }
}

TEST_F(GgufSplit, TensorsOfAnotherDownloadAreCounted) {
  // The same cut of a model with other tensor names: the counts still match, the names do not.
  model().write_split(path("m.gguf"), 2);
  fs::create_directories(dir_ / "other");
  GgufWriter w;
  w.add_kv("general.architecture", value_string("llama"));
  std::vector<uint8_t> bytes(4096, 1);
  for (int i = 0; i < 8; ++i)
    w.add_tensor("u" + std::to_string(i), GgmlType::F32, {1024}, std::span<const uint8_t>(bytes));
  w.write_split(path("other/m.gguf"), 2);
  fs::copy_file(path("other/m-00002-of-00002.gguf"), path("m-00002-of-00002.gguf"),
                fs::copy_options::overwrite_existing);
  try {
    GgufFile f(path("m-00001-of-00002.gguf"));
    FAIL() << "opened parts of two models";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("split.tensors.count"), std::string::npos) << e.what();
  }
}

TEST_F(GgufSplit, AnExtraPartBesideTheSetIsRefused) {
  model().write_split(path("m.gguf"), 2);
  fs::copy_file(path("m-00002-of-00002.gguf"), path("m-00003-of-00003.gguf"));
  try {
    GgufFile f(path("m-00001-of-00002.gguf"));
    FAIL() << "opened a set with a stray part beside it";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m-00003-of-00003.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("do not belong"), std::string::npos) << e.what();
  }
}

TEST_F(GgufSplit, MorePartsThanTensorsIsRefusedAndLeavesNothing) {
  EXPECT_THROW(model().write_split(path("m.gguf"), 8), Error);
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace clusterctl::gguf
