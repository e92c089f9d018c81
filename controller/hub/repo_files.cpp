#include "controller/hub/repo_files.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "controller/hub/text.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_split.h"

namespace clusterctl::hub {
namespace {

std::string_view file_name(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// The file name without ".gguf" and without "-0000K-of-0000N".
std::string model_stem(std::string_view path) {
  std::string name(file_name(path));
  if (auto split = gguf::parse_split_path(name)) name = split->prefix;
  if (name.size() > 5 && ascii_lower(name.substr(name.size() - 5)) == ".gguf") name.resize(name.size() - 5);
  return name;
}

// A token that names a llama.cpp quant type or a float type: Q4_K_M, IQ2_XXS, TQ1_0, BF16, F16.
bool quant_like(std::string_view token) {
  const std::string t = ascii_lower(token);
  if (t == "f16" || t == "bf16" || t == "f32" || t == "fp16" || t == "fp32" || t.starts_with("mxfp4")) return true;
  size_t at = 0;
  if (at < t.size() && (t[at] == 'i' || t[at] == 't')) ++at;
  return at + 1 < t.size() && t[at] == 'q' && t[at + 1] >= '1' && t[at + 1] <= '9';
}

std::vector<std::string_view> tokens_of(std::string_view stem) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at <= stem.size()) {
    size_t end = stem.find_first_of("-.", at);
    if (end == std::string_view::npos) end = stem.size();
    out.push_back(stem.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// `quant` (any case) in the stem between separators ('-', '.', start, end).
bool stem_names_quant(const std::string& stem, const std::string& quant) {
  const std::string s = ascii_lower(stem), q = ascii_lower(quant);
  for (size_t at = s.find(q); at != std::string::npos; at = s.find(q, at + 1)) {
    const bool start_ok = at == 0 || s[at - 1] == '-' || s[at - 1] == '.';
    const size_t end = at + q.size();
    const bool end_ok = end == s.size() || s[end] == '-' || s[end] == '.';
    if (start_ok && end_ok) return true;
  }
  return false;
}

// The repo's GGUF models: a single file, or the parts of a split one, keyed by the path of the
// single file or the split's prefix. Multimodal projectors (mmproj-*) are not models to run.
struct Model {
  std::vector<RepoFile> parts;  // by part number; a single file is one part
  int count = 1;                // parts the split names
  std::string key;
};

std::map<std::string, Model> models_of(const std::vector<RepoFile>& files, bool with_mmproj) {
  std::map<std::string, Model> models;
  for (const auto& f : files) {
    if (!ascii_lower(f.path).ends_with(".gguf")) continue;
    if (!with_mmproj && ascii_lower(file_name(f.path)).starts_with("mmproj")) continue;
    if (auto split = gguf::parse_split_path(f.path)) {
      Model& m = models[split->prefix];
      m.key = split->prefix;
      m.count = split->count;
      m.parts.push_back(f);
    } else {
      models[f.path] = Model{{f}, 1, f.path};
    }
  }
  for (auto& [key, m] : models) {
    std::sort(m.parts.begin(), m.parts.end(), [](const RepoFile& a, const RepoFile& b) { return a.path < b.path; });
  }
  return models;
}

ModelChoice complete(const Model& m, const std::string& repo) {
  if (m.count > 1) {
    for (int k = 1; k <= m.count; ++k) {
      const std::string want = gguf::split_path(m.key, k, m.count);
      const bool have = std::any_of(m.parts.begin(), m.parts.end(), [&](const RepoFile& f) { return f.path == want; });
      if (!have)
        throw Error(repo + " holds an incomplete split model: " + want + " (part " + std::to_string(k) + " of " +
                    std::to_string(m.count) + ") is not in the repo; choose another quant or file");
    }
  }
  return ModelChoice{m.parts, quant_label(m.parts.front().path)};
}

std::string model_list(const std::map<std::string, Model>& models) {
  std::string out;
  for (const auto& [key, m] : models) {
    if (!out.empty()) out += ", ";
    out += quant_label(m.parts.front().path);
    if (m.count > 1) out += " (" + std::to_string(m.count) + " parts)";
  }
  return out;
}

}  // namespace

std::vector<RepoFile> parse_tree_page(std::string_view json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) throw Error("the hub's file listing is not a JSON array");
  std::vector<RepoFile> out;
  for (const auto& e : j) {
    if (!e.is_object() || e.value("type", "") != "file") continue;
    const auto path = e.find("path");
    const auto size = e.find("size");
    if (path == e.end() || !path->is_string() || size == e.end() || !size->is_number_unsigned())
      throw Error("the hub's file listing has an entry without a path or size");
    RepoFile f{path->get<std::string>(), size->get<uint64_t>(), ""};
    if (auto lfs = e.find("lfs"); lfs != e.end() && lfs->is_object()) {
      const std::string oid = lfs->value("oid", "");
      if (is_sha256_hex(oid)) f.sha256 = oid;
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::string quant_label(std::string_view path) {
  const std::string stem = model_stem(path);
  const auto tokens = tokens_of(stem);
  for (size_t i = tokens.size(); i-- > 0;) {
    if (!quant_like(tokens[i])) continue;
    if (i > 0 && ascii_lower(tokens[i - 1]) == "ud") return "UD-" + std::string(tokens[i]);
    return std::string(tokens[i]);
  }
  return stem;
}

ModelChoice choose_model_files(const std::vector<RepoFile>& files, const ModelRef& ref) {
  const auto models = models_of(files, !ref.file.empty());
  if (models.empty())
    throw Error(ref.repo + " has no GGUF model files: clusterctl runs GGUF models; look for a -GGUF repo");
  if (!ref.file.empty()) {
    const std::string key = [&] {
      auto split = gguf::parse_split_path(ref.file);
      return split ? split->prefix : ref.file;
    }();
    auto it = models.find(key);
    if (it == models.end()) {
      std::string names;
      for (const auto& [k, m] : models) names += (names.empty() ? "" : ", ") + m.parts.front().path;
      throw Error(ref.repo + " has no file " + ref.file + ": its GGUF files are " + names);
    }
    return complete(it->second, ref.repo);
  }
  if (ref.quant.empty()) {
    if (models.size() == 1) return complete(models.begin()->second, ref.repo);
    for (const auto& [key, m] : models)
      if (ascii_lower(quant_label(m.parts.front().path)) == "q4_k_m") return complete(m, ref.repo);
    throw Error(ref.repo + " holds " + std::to_string(models.size()) + " models (" + model_list(models) +
                "): name one as " + ref.repo + ":QUANT");
  }
  std::vector<const Model*> exact, named;
  for (const auto& [key, m] : models) {
    const std::string label = quant_label(m.parts.front().path);
    if (ascii_lower(label) == ascii_lower(ref.quant)) exact.push_back(&m);
    if (stem_names_quant(model_stem(m.parts.front().path), ref.quant)) named.push_back(&m);
  }
  const auto& found = exact.empty() ? named : exact;
  if (found.empty())
    throw Error(ref.repo + " has no quant '" + ref.quant + "': it has " + model_list(models) +
                "; name one of them as " + ref.repo + ":QUANT");
  if (found.size() > 1) {
    std::string names;
    for (const Model* m : found) names += (names.empty() ? "" : ", ") + m->parts.front().path;
    throw Error("'" + ref.quant + "' matches " + std::to_string(found.size()) + " models in " + ref.repo + " (" +
                names + "): name the file as " + ref.repo + "/FILE.gguf");
  }
  return complete(*found.front(), ref.repo);
}

}  // namespace clusterctl::hub
