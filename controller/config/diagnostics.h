#pragma once
#include <string>
#include <vector>

#include "worker/common/error.h"

namespace clusterctl::config {

// A position in a cluster file, 1-based as editors show it. line 0 means "the whole file".
struct SourcePos {
  int line = 0;
  int column = 0;
};

// One problem found in a cluster file, reported like a compiler diagnostic:
//   FILE:LINE:COLUMN: error: MESSAGE
//     hint: HINT
struct Diagnostic {
  SourcePos pos;
  std::string message;
  std::string hint;  // empty when there is nothing useful to suggest

  std::string format(const std::string& file) const;
};

// Thrown when a cluster file has problems; carries every one of them, not just the first.
class ConfigError : public Error {
 public:
  ConfigError(std::string file, std::vector<Diagnostic> diagnostics);
  const std::string& file() const { return file_; }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace clusterctl::config
