#pragma once
#include <string>

#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::tokenizer {

// Turns a stream of generated ids into printable text: never emits part of a UTF-8
// character (bytes of an unfinished character wait for the next token) and emits invalid
// bytes as U+FFFD.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false);
  std::string push(TokenId id);
  // What is still held back at the end of the stream, each byte as U+FFFD.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  bool render_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace clusterctl::tokenizer
