#include "controller/hub/model_ref.h"

#include <filesystem>
#include <vector>

namespace clusterctl::hub {
namespace {

// The hub's rule for an organisation or repo name: letters, digits, '-', '_', '.'; not starting
// or ending with '-' or '.', no "--" or "..", at most 96 characters.
bool valid_repo_part(std::string_view s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  if (s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
  return s.find("--") == std::string_view::npos && s.find("..") == std::string_view::npos;
}

bool valid_quant(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A file path inside a repo: non-empty parts without "." or ".." and no control characters.
bool valid_repo_path(std::string_view s) {
  if (s.empty() || s.size() > 1024) return false;
  size_t at = 0;
  while (at <= s.size()) {
    size_t end = s.find('/', at);
    if (end == std::string_view::npos) end = s.size();
    const std::string_view part = s.substr(at, end - at);
    if (part.empty() || part == "." || part == "..") return false;
    for (unsigned char c : part)
      if (c < 0x20 || c == 0x7f || c == '\\') return false;
    at = end + 1;
  }
  return true;
}

std::vector<std::string_view> split_slash(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  while (true) {
    const size_t end = s.find('/', at);
    parts.push_back(s.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    if (end == std::string_view::npos) return parts;
    at = end + 1;
  }
}

}  // namespace

std::string ModelRef::str() const {
  if (!file.empty()) return repo + "/" + file;
  return quant.empty() ? repo : repo + ":" + quant;
}

std::optional<ModelRef> parse_model_ref(std::string_view text) {
  for (std::string_view prefix : {"hf.co/", "huggingface.co/"}) {
    if (text.starts_with(prefix)) {
      text.remove_prefix(prefix.size());
      break;
    }
  }
  if (text.empty() || text.front() == '/' || text.front() == '.' || text.front() == '~') return std::nullopt;
  const auto parts = split_slash(text);
  if (parts.size() < 2 || !valid_repo_part(parts[0])) return std::nullopt;
  ModelRef ref;
  if (parts.size() == 2) {
    std::string_view name = parts[1];
    if (const size_t colon = name.find(':'); colon != std::string_view::npos) {
      ref.quant = std::string(name.substr(colon + 1));
      name = name.substr(0, colon);
      if (!valid_quant(ref.quant)) return std::nullopt;
    }
    // "dir/model.gguf" is a path to a file, not a repo.
    if (!valid_repo_part(name) || name.ends_with(".gguf")) return std::nullopt;
    ref.repo = std::string(parts[0]) + "/" + std::string(name);
    return ref;
  }
  if (!valid_repo_part(parts[1])) return std::nullopt;
  const std::string_view file = text.substr(parts[0].size() + parts[1].size() + 2);
  if (!file.ends_with(".gguf") || !valid_repo_path(file)) return std::nullopt;
  ref.repo = std::string(parts[0]) + "/" + std::string(parts[1]);
  ref.file = std::string(file);
  return ref;
}

std::optional<ModelRef> model_ref_to_pull(const std::string& model_arg) {
  std::error_code ec;
  if (std::filesystem::exists(model_arg, ec)) return std::nullopt;
  return parse_model_ref(model_arg);
}

}  // namespace clusterctl::hub
