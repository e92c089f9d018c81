// Placeholder until the tokenizer library lands (issue: foundation).
#include "worker/common/error.h"
namespace clusterctl::cli {
int tokenize_main(int, char**) { throw Error("tokenize: not built yet"); }
}  // namespace clusterctl::cli
