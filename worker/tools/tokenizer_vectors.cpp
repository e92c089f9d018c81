#include "worker/tools/tokenizer_vectors.h"

#include <fstream>
#include <sstream>

#include "worker/common/error.h"

namespace clusterctl::tokenizer {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the test-vector file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::vector<std::string> read_vector_inputs(const std::string& path) {
  std::string all = read_file(path);
  std::vector<std::string> inputs;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t sep = all.find(kVectorSeparator, pos);
    if (sep == std::string::npos)
      throw Error(path + ": text after the last '__ggml_vocab_test__' separator; every string must end with one");
    inputs.push_back(all.substr(pos, sep - pos));
    pos = sep + kVectorSeparator.size();
  }
  return inputs;
}

std::string format_vector_line(const std::vector<TokenId>& ids) {
  std::string line;
  for (TokenId id : ids) {
    line += ' ';
    line += std::to_string(id);
  }
  return line;
}

}  // namespace clusterctl::tokenizer
