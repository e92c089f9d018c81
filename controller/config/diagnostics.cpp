#include "controller/config/diagnostics.h"

namespace clusterctl::config {

std::string Diagnostic::format(const std::string& file) const {
  std::string s = file;
  if (pos.line > 0) s += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  s += ": error: " + message;
  if (!hint.empty()) s += "\n  hint: " + hint;
  return s;
}

namespace {

std::string summary(const std::string& file, const std::vector<Diagnostic>& diagnostics) {
  std::string s = file + " has " + std::to_string(diagnostics.size()) +
                  (diagnostics.size() == 1 ? " problem" : " problems") + " (see docs/config.md):";
  for (const auto& d : diagnostics) s += "\n" + d.format(file);
  return s;
}

}  // namespace

ConfigError::ConfigError(std::string file, std::vector<Diagnostic> diagnostics)
    : Error(summary(file, diagnostics)), file_(std::move(file)), diagnostics_(std::move(diagnostics)) {}

}  // namespace clusterctl::config
