#pragma once
// Split GGUF files, as llama.cpp's gguf-split writes them: NAME-00001-of-0000N.gguf holds the
// model's metadata and split.{no,count,tensors.count}; the other parts hold only the split keys
// and their share of the tensors. GgufFile opens the first part (or the folder) and maps every part.
#include <optional>
#include <string>
#include <string_view>

namespace clusterctl::gguf {

constexpr std::string_view kSplitNo = "split.no";  // 0-based
constexpr std::string_view kSplitCount = "split.count";
constexpr std::string_view kSplitTensorsCount = "split.tensors.count";
constexpr int kMaxSplitParts = 9999;

// "PREFIX-0000K-of-0000N.gguf" for part K (1-based) of N.
std::string split_path(std::string_view prefix, int part, int count);

struct SplitName {
  std::string prefix;  // the path without "-0000K-of-0000N.gguf"
  int part = 0;        // 1-based
  int count = 0;
};
std::optional<SplitName> parse_split_path(std::string_view path);

// The model file a path names: the path itself, or in a folder its one first part
// (*-00001-of-*.gguf) or its one .gguf file. Throws clusterctl::Error naming what is ambiguous.
std::string resolve_model_path(const std::string& path);

}  // namespace clusterctl::gguf
