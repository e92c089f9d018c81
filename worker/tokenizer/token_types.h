#pragma once
#include <cstdint>

namespace clusterctl::tokenizer {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// tokenizer.ggml.token_type values, as the GGUF convention numbers them.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

// Which algorithm turns text into ids (tokenizer.ggml.model).
enum class VocabKind {
  SentencePiece,     // "llama": score-ordered merges, byte fallback, ▁ for spaces
  BytePairEncoding,  // "gpt2": byte-level BPE with ranked merges and a regex pre-tokenizer
  WordPiece,         // "bert": lower-cased, accent-stripped words split greedily into the longest pieces
};

}  // namespace clusterctl::tokenizer
