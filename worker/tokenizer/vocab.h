#pragma once
#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "worker/gguf/gguf_file.h"
#include "worker/tokenizer/flat_index.h"
#include "worker/tokenizer/token_types.h"

namespace clusterctl::tokenizer {

// A tokenizer's vocabulary as the GGUF metadata describes it (tokenizer.ggml.*): token texts,
// scores, types, BPE merges, special ids and flags. Lookups are flat hash tables over the
// stored strings and token ids, so the Llama 3 vocabulary (128k tokens, 280k merges) loads
// in a few tens of milliseconds. Not copyable: the text index points into the text vector.
class Vocab {
 public:
  // Throws clusterctl::Error naming the file and key when the metadata is missing or wrong,
  // or when tokenizer.ggml.model names an algorithm this library does not implement.
  static std::unique_ptr<Vocab> from_gguf(const gguf::GgufFile& file);

  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  VocabKind kind() const { return kind_; }
  const std::string& model_name() const { return model_name_; }  // tokenizer.ggml.model
  const std::string& pre_name() const { return pre_name_; }      // tokenizer.ggml.pre ("" when absent)

  size_t size() const { return texts_.size(); }
  bool valid(TokenId id) const { return id >= 0 && static_cast<size_t>(id) < texts_.size(); }
  const std::string& text(TokenId id) const { return texts_.at(static_cast<size_t>(id)); }
  float score(TokenId id) const { return scores_.at(static_cast<size_t>(id)); }
  TokenType type(TokenId id) const { return types_.at(static_cast<size_t>(id)); }
  TokenId find(std::string_view text) const;  // kNoToken when absent
  size_t max_token_bytes() const { return max_token_bytes_; }

  // Rank of the BPE merge of tokens (left, right): lower merges first. -1 when there is none.
  int merge_rank(TokenId left, TokenId right) const {
    return left < 0 || right < 0 ? -1 : merge_ranks_.find(left, right);
  }
  size_t merge_count() const { return merge_count_; }

  // The token that stands for one raw byte (SentencePiece <0xXX>, byte-level BPE alphabet).
  TokenId byte_token(uint8_t byte) const { return byte_tokens_[byte]; }

  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  TokenId unk() const { return unk_; }
  TokenId pad() const { return pad_; }
  TokenId eot() const { return eot_; }
  TokenId sep() const { return sep_; }  // WordPiece: ends a sequence when add_sep()
  // Whether generating `id` ends a turn: EOS, EOT and the end-of-turn/message tokens a
  // model's vocabulary has (<|eot_id|>, <|eom_id|>, <|im_end|>, <end_of_turn>, ...).
  bool is_end_of_generation(TokenId id) const {
    return id != kNoToken &&
           std::find(end_of_generation_.begin(), end_of_generation_.end(), id) != end_of_generation_.end();
  }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_sep() const { return add_sep_; }
  bool add_space_prefix() const { return add_space_prefix_; }

  // Control, user-defined and unknown tokens, longest text first: the ones whose text is
  // matched in the input before the main algorithm runs.
  const std::vector<TokenId>& special_tokens() const { return special_tokens_; }

 private:
  Vocab() = default;
  void load_tokens(const gguf::GgufFile& file);
  void load_merges(const gguf::GgufFile& file);
  void load_special_ids(const gguf::GgufFile& file);
  void index_byte_tokens();

  VocabKind kind_ = VocabKind::SentencePiece;
  std::string model_name_;
  std::string pre_name_;
  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  TextIndex ids_;
  PairIndex merge_ranks_;
  size_t merge_count_ = 0;
  std::array<TokenId, 256> byte_tokens_{};
  std::vector<TokenId> special_tokens_;
  std::vector<TokenId> end_of_generation_;
  size_t max_token_bytes_ = 0;
  TokenId bos_ = kNoToken, eos_ = kNoToken, unk_ = kNoToken, pad_ = kNoToken, eot_ = kNoToken, sep_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, add_sep_ = false, add_space_prefix_ = false;
};

}  // namespace clusterctl::tokenizer
