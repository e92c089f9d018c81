#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "worker/tokenizer/token_types.h"

namespace clusterctl::tokenizer {

// llama.cpp's tokenizer test-vector files, as `clusterctl tokenize --vectors` reads and writes
// them (see ../shared/testdata/tokenizer/SOURCE.md):
// X.gguf.inp holds strings each followed by "\n__ggml_vocab_test__\n"; X.gguf.out has one
// line of ids per string, each id written with a leading space.
inline constexpr std::string_view kVectorSeparator = "\n__ggml_vocab_test__\n";

// The strings of an .inp file (`clusterctl tokenize --vectors` and the vector test read it).
// Throws clusterctl::Error naming the file when it cannot be read or is malformed.
std::vector<std::string> read_vector_inputs(const std::string& path);

// One line of a .out file (without the newline): " 1 2 3", "" for no ids.
std::string format_vector_line(const std::vector<TokenId>& ids);

}  // namespace clusterctl::tokenizer
