#include "worker/tokenizer/vocab.h"

#include <algorithm>
#include <cstdio>

#include "worker/common/error.h"
#include "worker/tokenizer/byte_unicode.h"

namespace clusterctl::tokenizer {
namespace {

const gguf::Array& required_array(const gguf::GgufFile& f, std::string_view key, gguf::ValueType elem,
                                  std::string_view what) {
  const gguf::Value* v = f.find(key);
  if (!v)
    throw Error(f.path() + ": metadata key '" + std::string(key) + "' (" + std::string(what) +
                ") is missing; convert the model again with its tokenizer");
  if (v->type != gguf::ValueType::ARRAY || v->as_array().elem_type != elem)
    throw Error(f.path() + ": metadata key '" + std::string(key) + "' must be an array of " +
                std::string(gguf::value_type_name(elem)) + ", found " + v->to_display(2));
  return v->as_array();
}

const gguf::Array* optional_array(const gguf::GgufFile& f, std::string_view key, size_t expected_size) {
  const gguf::Value* v = f.find(key);
  if (!v) return nullptr;
  if (v->type != gguf::ValueType::ARRAY)
    throw Error(f.path() + ": metadata key '" + std::string(key) + "' must be an array, found " + v->to_display(2));
  const auto& a = v->as_array();
  if (a.items.size() != expected_size)
    throw Error(f.path() + ": metadata key '" + std::string(key) + "' has " + std::to_string(a.items.size()) +
                " entries but tokenizer.ggml.tokens has " + std::to_string(expected_size));
  return &a;
}

// Pre-tokenizer names whose models expect a BOS token even when the file does not say so
// (llama.cpp's defaults for the Llama 3 family).
bool llama3_family(std::string_view pre) {
  return pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3";
}

// Texts of end-of-turn tokens that converters sometimes leave typed as normal text; they are
// control tokens in every model that has them, so the special-token matcher must treat them so.
bool end_of_turn_text(std::string_view t) {
  return t == "<|eot_id|>" || t == "<|im_end|>" || t == "<|end|>" || t == "<end_of_turn>" || t == "<|endoftext|>" ||
         t == "<|end_of_text|>" || t == "<EOT>" || t == "<|eom_id|>";
}

}  // namespace

std::unique_ptr<Vocab> Vocab::from_gguf(const gguf::GgufFile& file) {
  std::unique_ptr<Vocab> v(new Vocab());
  auto model = file.get_string("tokenizer.ggml.model");
  if (!model)
    throw Error(file.path() +
                ": has no tokenizer (metadata key 'tokenizer.ggml.model' is missing); "
                "use a GGUF file converted together with its tokenizer");
  v->model_name_ = *model;
  v->pre_name_ = file.get_string("tokenizer.ggml.pre", "");
  if (*model == "llama") {
    v->kind_ = VocabKind::SentencePiece;
  } else if (*model == "gpt2") {
    v->kind_ = VocabKind::BytePairEncoding;
  } else if (*model == "bert") {
    v->kind_ = VocabKind::WordPiece;
  } else {
    std::string name = *model == "t5" ? "t5 (Unigram)" : *model == "rwkv" ? "rwkv (RWKV world)" : *model;
    throw Error(
        file.path() + ": tokenizer.ggml.model '" + name +
        "' is not supported; supported are 'llama' (SentencePiece), 'gpt2' (byte-level BPE) and 'bert' (WordPiece)");
  }

  v->load_tokens(file);
  // Kimi-K2 files may come without merges (llama.cpp accepts them: every piece is then its
  // characters' tokens, else its bytes').
  const bool merges_optional = v->pre_name_ == "kimi-k2" && !file.find("tokenizer.ggml.merges");
  if (v->kind_ == VocabKind::BytePairEncoding && !merges_optional) v->load_merges(file);
  v->load_special_ids(file);
  v->index_byte_tokens();

  for (TokenId id = 0; id < static_cast<TokenId>(v->texts_.size()); ++id) {
    TokenType t = v->types_[id];
    if (t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown)
      v->special_tokens_.push_back(id);
  }
  std::stable_sort(v->special_tokens_.begin(), v->special_tokens_.end(),
                   [&](TokenId a, TokenId b) { return v->texts_[a].size() > v->texts_[b].size(); });
  return v;
}

void Vocab::load_tokens(const gguf::GgufFile& file) {
  const auto& tokens = required_array(file, "tokenizer.ggml.tokens", gguf::ValueType::STRING, "the token texts");
  size_t n = tokens.items.size();
  if (n == 0) throw Error(file.path() + ": metadata key 'tokenizer.ggml.tokens' is empty");
  if (n > static_cast<size_t>(INT32_MAX)) throw Error(file.path() + ": tokenizer.ggml.tokens has too many entries");
  texts_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = tokens.items[i].as_string();
    // An empty text could never be matched and would collide in the index; name it instead.
    texts_.push_back(t.empty() ? "[EMPTY_" + std::to_string(i) + "]" : t);
    max_token_bytes_ = std::max(max_token_bytes_, texts_.back().size());
  }
  scores_.assign(n, 0.0f);
  if (const auto* scores = optional_array(file, "tokenizer.ggml.scores", n))
    for (size_t i = 0; i < n; ++i) scores_[i] = static_cast<float>(scores->items[i].as_double());
  types_.assign(n, TokenType::Normal);
  if (const auto* types = optional_array(file, "tokenizer.ggml.token_type", n)) {
    for (size_t i = 0; i < n; ++i) {
      int64_t t = types->items[i].as_int();
      types_[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::Undefined;
    }
  }
  ids_.build(texts_);  // a duplicate text: the last id wins
}

void Vocab::load_merges(const gguf::GgufFile& file) {
  const auto& merges = required_array(file, "tokenizer.ggml.merges", gguf::ValueType::STRING, "the BPE merges");
  merge_ranks_.reserve(merges.items.size());
  for (size_t i = 0; i < merges.items.size(); ++i) {
    std::string_view m = merges.items[i].as_string();
    // Search from 1: a merge's left part may itself be a space in non-byte-level vocabularies.
    size_t sep = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    if (sep == std::string_view::npos)
      throw Error(file.path() + ": tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + std::string(m) +
                  "' is not of the form 'left right'");
    TokenId left = find(m.substr(0, sep)), right = find(m.substr(sep + 1));
    // Both halves of a merge are tokens in any consistent vocabulary (Hugging Face refuses
    // others); a merge that names a non-token could never apply.
    if (left == kNoToken || right == kNoToken) continue;
    merge_ranks_.insert(left, right, static_cast<int32_t>(i));
    ++merge_count_;
  }
}

void Vocab::load_special_ids(const gguf::GgufFile& file) {
  bool spm = kind_ == VocabKind::SentencePiece, wpm = kind_ == VocabKind::WordPiece;
  // llama.cpp's defaults when the file does not name them. WordPiece: [CLS] text [SEP].
  bos_ = spm ? 1 : wpm ? 101 : 11;
  eos_ = spm ? 2 : wpm ? kNoToken : 11;
  unk_ = spm ? 0 : wpm ? 100 : kNoToken;
  sep_ = wpm ? 102 : kNoToken;
  add_bos_ = spm || wpm || llama3_family(pre_name_);
  add_eos_ = false;
  add_sep_ = wpm;
  add_space_prefix_ = spm;

  auto read_id = [&](std::string_view key, TokenId& id) {
    if (auto v = file.get_int(key)) id = static_cast<TokenId>(*v);
    if (!valid(id)) id = kNoToken;  // an id past the vocabulary names no token
  };
  read_id("tokenizer.ggml.bos_token_id", bos_);
  read_id("tokenizer.ggml.eos_token_id", eos_);
  read_id("tokenizer.ggml.unknown_token_id", unk_);
  read_id("tokenizer.ggml.padding_token_id", pad_);
  read_id("tokenizer.ggml.eot_token_id", eot_);
  if (wpm) read_id("tokenizer.ggml.cls_token_id", bos_);  // BERT's sequence start
  read_id("tokenizer.ggml.seperator_token_id", sep_);     // the key's spelling in GGUF files
  if (auto b = file.get_bool("tokenizer.ggml.add_sep_token")) add_sep_ = *b;
  if (auto b = file.get_bool("tokenizer.ggml.add_bos_token")) add_bos_ = *b;
  if (auto b = file.get_bool("tokenizer.ggml.add_eos_token")) add_eos_ = *b;
  if (auto b = file.get_bool("tokenizer.ggml.add_space_prefix")) add_space_prefix_ = *b;
  if (add_bos_ && bos_ == kNoToken)
    throw Error(file.path() +
                ": tokenizer.ggml.add_bos_token is true but there is no valid tokenizer.ggml.bos_token_id");
  if (add_sep_ && sep_ == kNoToken)
    throw Error(file.path() +
                ": a separator token is to be added but there is no valid tokenizer.ggml.seperator_token_id");
  if (add_eos_ && eos_ == kNoToken)
    throw Error(file.path() +
                ": tokenizer.ggml.add_eos_token is true but there is no valid tokenizer.ggml.eos_token_id");

  for (size_t i = 0; i < texts_.size(); ++i) {
    if (!end_of_turn_text(texts_[i])) continue;
    types_[i] = TokenType::Control;
    end_of_generation_.push_back(static_cast<TokenId>(i));
  }
  // No EOT in the metadata: the model's end-of-turn token, most specific text first.
  for (const char* text :
       {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<EOT>", "<|endoftext|>", "<|end_of_text|>"}) {
    if (eot_ != kNoToken) break;
    eot_ = find(text);
  }
  for (TokenId id : {eos_, eot_})
    if (id != kNoToken && !is_end_of_generation(id)) end_of_generation_.push_back(id);
}

void Vocab::index_byte_tokens() {
  for (int b = 0; b < 256; ++b) {
    TokenId id = kNoToken;
    if (kind_ == VocabKind::SentencePiece) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      id = find(hex);
      if (id == kNoToken) id = find(std::string(1, static_cast<char>(b)));
    } else {
      id = find(ByteUnicodeMap::get().encode(static_cast<uint8_t>(b)));
    }
    byte_tokens_[b] = id;
  }
}

TokenId Vocab::find(std::string_view text) const { return ids_.find(text); }

}  // namespace clusterctl::tokenizer
