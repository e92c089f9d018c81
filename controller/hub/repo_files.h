#pragma once
// A repo's file listing (GET /api/models/ORG/NAME/tree/REV?recursive=true) and the choice of the
// model's files in it: the quant by name, every part of a split file.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "controller/hub/model_ref.h"

namespace clusterctl::hub {

struct RepoFile {
  std::string path;    // inside the repo
  uint64_t size = 0;   // bytes
  std::string sha256;  // the LFS object id (64 hex digits), "" for a file not in LFS
};

// One page of the listing (a JSON array of {type, path, size, lfs: {oid, size}}); folders are
// left out. Throws clusterctl::Error when it is not such an array.
std::vector<RepoFile> parse_tree_page(std::string_view json_text);

// "Q4_K_M" of "Qwen3-8B-Q4_K_M.gguf", "UD-Q4_K_XL" of "sub/M-UD-Q4_K_XL-00001-of-00002.gguf"; the
// file name without ".gguf" (and the part suffix) when it names no quant type.
std::string quant_label(std::string_view path);

struct ModelChoice {
  std::vector<RepoFile> files;  // the one file, or every part of a split model, first part first
  std::string label;            // its quant label
};

// The model the name asks for among the repo's files. Throws clusterctl::Error naming the cause
// and the fix: no such quant (naming the quants that exist), no such file, several models that
// match (naming them), a split model missing a part, a repo without GGUF files.
ModelChoice choose_model_files(const std::vector<RepoFile>& files, const ModelRef& ref);

}  // namespace clusterctl::hub
