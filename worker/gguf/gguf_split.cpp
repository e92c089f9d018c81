#include "worker/gguf/gguf_split.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <vector>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"

namespace clusterctl::gguf {
namespace fs = std::filesystem;

std::string split_path(std::string_view prefix, int part, int count) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", part, count);
  return std::string(prefix) + suffix;
}

std::optional<SplitName> parse_split_path(std::string_view path) {
  constexpr std::string_view kExt = ".gguf";
  constexpr size_t kTail = 1 + 5 + 4 + 5 + 5;  // "-00001-of-00003.gguf"
  if (path.size() <= kTail || !path.ends_with(kExt)) return std::nullopt;
  const std::string_view tail = path.substr(path.size() - kTail);
  auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (tail[0] != '-' || !digits(tail.substr(1, 5)) || tail.substr(6, 4) != "-of-" || !digits(tail.substr(10, 5)))
    return std::nullopt;
  SplitName s;
  s.prefix = std::string(path.substr(0, path.size() - kTail));
  s.part = std::stoi(std::string(tail.substr(1, 5)));
  s.count = std::stoi(std::string(tail.substr(10, 5)));
  if (s.part < 1 || s.count < 1 || s.part > s.count) return std::nullopt;
  return s;
}

std::string resolve_model_path(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return path;
  std::vector<std::string> first_parts, ggufs;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string p = e.path().string();
    if (!p.ends_with(".gguf")) continue;
    ggufs.push_back(p);
    if (auto s = parse_split_path(p); s && s->part == 1) first_parts.push_back(p);
  }
  if (ec) throw Error("cannot read the model folder " + path + ": " + ec.message());
  std::sort(first_parts.begin(), first_parts.end());
  if (first_parts.size() == 1) return first_parts.front();
  if (first_parts.size() > 1)
    throw Error(path + " holds the first parts of " + std::to_string(first_parts.size()) + " split models (" +
                first_parts[0] + ", " + first_parts[1] + "); name the first part of the one to use");
  if (ggufs.size() == 1) return ggufs.front();
  throw Error(path + " is a folder with " + std::to_string(ggufs.size()) +
              " .gguf files and no first part of a split model (*-00001-of-*.gguf); name the model file");
}

// Opens parts 2..N of a split model whose first part this is, and takes their tensors.
void GgufFile::open_other_parts() {
  const int64_t count = get_int(kSplitCount).value_or(1);
  const int64_t no = get_int(kSplitNo).value_or(0);
  if (count < 1 || count > kMaxSplitParts || no < 0 || no >= count)
    throw Error(path_ + ": metadata 'split.no' = " + std::to_string(no) + ", 'split.count' = " + std::to_string(count) +
                ": not a valid part of a split model");
  const auto name = parse_split_path(path_);
  if (no != 0)
    throw Error(path_ + " is part " + std::to_string(no + 1) + " of " + std::to_string(count) +
                " of a split model; open its first part" +
                (name ? ", " + split_path(name->prefix, 1, name->count) : std::string()));
  if (count == 1) return;
  if (!name || name->count != count)
    throw Error(path_ + " is the first of " + std::to_string(count) + " parts of a split model, but its name is not " +
                split_path("NAME", 1, static_cast<int>(count)) + ": keep the names gguf-split gave the parts");
  std::set<std::string> expected;
  for (int k = 1; k <= count; ++k) expected.insert(split_path(name->prefix, k, static_cast<int>(count)));
  // A part of another download beside these ones would be silently ignored: refuse it.
  const fs::path dir = fs::path(path_).parent_path().empty() ? fs::path(".") : fs::path(path_).parent_path();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string p = (fs::path(path_).parent_path() / e.path().filename()).string();
    const auto other = parse_split_path(p);
    if (other && other->prefix == name->prefix && !expected.count(p))
      throw Error(p + " lies beside the " + std::to_string(count) + " parts of " + name->prefix + " but is part " +
                  std::to_string(other->part) + " of " + std::to_string(other->count) +
                  ": remove the parts that do not belong to this download");
  }
  for (int k = 2; k <= count; ++k) {
    const std::string p = split_path(name->prefix, k, static_cast<int>(count));
    if (!fs::exists(p, ec))
      throw Error("part " + std::to_string(k) + " of " + std::to_string(count) + " of the split model " + path_ +
                  " is missing (" + p + "); copy or download every part into the same folder");
    std::unique_ptr<GgufFile> part(new GgufFile());
    part->open_one(p);
    const int64_t pc = part->get_int(kSplitCount).value_or(1), pn = part->get_int(kSplitNo).value_or(0);
    if (pc != count || pn != k - 1)
      throw Error(p + " says it is part " + std::to_string(pn + 1) + " of " + std::to_string(pc) + ", not part " +
                  std::to_string(k) + " of " + std::to_string(count) +
                  ": the parts come from different downloads or were renamed");
    const uint32_t index = static_cast<uint32_t>(parts_.size());
    for (TensorInfo t : part->tensors_) {
      if (tensor_index_.count(t.name))
        throw Error(p + ": tensor '" + t.name +
                    "' is also in an earlier part: the parts come from different downloads");
      t.part = index;
      tensor_index_.emplace(t.name, tensors_.size());
      tensors_.push_back(std::move(t));
    }
    parts_.push_back(std::move(part->parts_.front()));
  }
  const int64_t want = get_int(kSplitTensorsCount).value_or(static_cast<int64_t>(tensors_.size()));
  if (want != static_cast<int64_t>(tensors_.size()))
    throw Error(path_ + ": the " + std::to_string(count) + " parts hold " + std::to_string(tensors_.size()) +
                " tensors but 'split.tensors.count' is " + std::to_string(want) +
                ": a part is incomplete or from another download");
}

}  // namespace clusterctl::gguf
