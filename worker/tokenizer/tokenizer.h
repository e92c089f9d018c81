#pragma once
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "worker/gguf/gguf_file.h"
#include "worker/tokenizer/pre_tokenizer.h"
#include "worker/tokenizer/vocab.h"

namespace clusterctl::tokenizer {

// Text <-> token ids with the tokenizer a GGUF file describes: SentencePiece-style BPE
// ("llama"), byte-level BPE ("gpt2") with the pre-tokenizer tokenizer.ggml.pre names, or
// WordPiece ("bert").
// Thread-safe for concurrent tokenize/detokenize calls once built.
class Tokenizer {
 public:
  // Throws clusterctl::Error when the file has no tokenizer or one this library lacks.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::GgufFile& file);

  const Vocab& vocab() const { return *vocab_; }
  // Non-empty when loading needed a fallback the user should hear about.
  const std::string& warning() const { return warning_; }

  // `add_special`: BOS/EOS as the model's add_bos/add_eos flags say.
  // `parse_special`: control-token text in the input becomes that token; otherwise it is
  // plain text. Any bytes are accepted: invalid UTF-8 ends up as byte tokens.
  std::vector<TokenId> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes one token stands for. Control and unknown tokens give "" unless
  // `render_special`. May be part of a UTF-8 character (byte tokens).
  const std::string& piece(TokenId id, bool render_special = false) const;

  // The text of a whole sequence, exact for byte tokens. For SentencePiece vocabularies the
  // space the tokenizer put in front of the text (after an optional leading BOS) is removed.
  std::string detokenize(std::span<const TokenId> ids, bool render_special = false) const;

  // Whether the piece of the first text token should lose its leading space: the space
  // SentencePiece puts in front of the text, or WordPiece's word-start mark.
  bool strips_leading_space() const { return vocab_->add_space_prefix() || vocab_->kind() == VocabKind::WordPiece; }

 private:
  Tokenizer() = default;
  void build_pieces();
  void tokenize_text(std::string_view text, bool after_special, std::vector<TokenId>& out) const;

  std::unique_ptr<Vocab> vocab_;
  std::unique_ptr<PreTokenizer> pre_;  // byte-level BPE only
  std::vector<std::string> pieces_;    // what each token decodes to (special ones: "")
  std::string warning_;
};

}  // namespace clusterctl::tokenizer
