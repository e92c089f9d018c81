#include "worker/tokenizer/tokenizer.h"

#include "worker/common/error.h"
#include "worker/tokenizer/bpe.h"
#include "worker/tokenizer/byte_unicode.h"
#include "worker/tokenizer/special_tokens.h"
#include "worker/tokenizer/spm.h"
#include "worker/tokenizer/utf8.h"
#include "worker/tokenizer/wordpiece.h"

namespace clusterctl::tokenizer {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // ▁ U+2581, SentencePiece's space

std::string spm_escape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == ' ')
      out += kSpmSpace;
    else
      out += c;
  }
  return out;
}

std::string spm_unescape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, kSpmSpace.size()) == kSpmSpace) {
      out += ' ';
      i += kSpmSpace.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

// "<0x41>" -> 0x41; the text of a SentencePiece byte token.
std::optional<uint8_t> parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

// A byte-level BPE token's text back to the bytes it stands for. Characters outside the
// byte alphabet (some added tokens are written plainly) stay as they are.
std::string byte_level_decode(std::string_view text) {
  const auto& map = ByteUnicodeMap::get();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    utf8::Decoded d = utf8::decode(text, i);
    auto byte = d.valid ? map.decode(d.cp) : std::nullopt;
    if (byte)
      out += static_cast<char>(*byte);
    else
      out.append(text.substr(i, d.len));
    i += d.len;
  }
  return out;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::GgufFile& file) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_ = Vocab::from_gguf(file);
  if (t->vocab_->kind() == VocabKind::BytePairEncoding) {
    t->pre_ = std::make_unique<PreTokenizer>(t->vocab_->pre_name());
    if (!t->pre_->recognized()) {
      const std::string& pre = t->vocab_->pre_name();
      t->warning_ =
          file.path() +
          (pre.empty() ? ": has no tokenizer.ggml.pre" : ": tokenizer.ggml.pre '" + pre + "' is not known here") +
          "; using the default pre-tokenizer, so ids may differ from the model's own tokenizer";
    }
  }
  t->build_pieces();
  return t;
}

void Tokenizer::build_pieces() {
  const Vocab& v = *vocab_;
  pieces_.resize(v.size());
  for (TokenId id = 0; id < static_cast<TokenId>(v.size()); ++id) {
    const std::string& text = v.text(id);
    std::string& piece = pieces_[id];
    switch (v.type(id)) {
      case TokenType::Control:
      case TokenType::Unknown:
        break;  // rendered only on request, as their text
      case TokenType::UserDefined:
        piece = text;
        break;
      case TokenType::Byte:
        if (auto b = parse_byte_token(text))
          piece.assign(1, static_cast<char>(*b));
        else
          piece = v.kind() == VocabKind::BytePairEncoding ? byte_level_decode(text) : spm_unescape_spaces(text);
        break;
      case TokenType::Normal:
        // SentencePiece and WordPiece mark word starts with ▁; byte-level BPE maps bytes.
        piece = v.kind() == VocabKind::BytePairEncoding ? byte_level_decode(text) : spm_unescape_spaces(text);
        break;
      case TokenType::Unused:
      case TokenType::Undefined:
        break;  // placeholders that stand for no text
    }
  }
}

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && vocab_->add_bos()) out.push_back(vocab_->bos());
  bool after_special = true;  // the start of the text counts as "after a special token"
  for (const Fragment& f : split_special_tokens(*vocab_, text, parse_special)) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      after_special = true;
    } else {
      tokenize_text(text.substr(f.begin, f.end - f.begin), after_special, out);
      after_special = false;
    }
  }
  if (add_special && vocab_->add_eos()) out.push_back(vocab_->eos());
  if (add_special && vocab_->add_sep()) out.push_back(vocab_->sep());
  return out;
}

void Tokenizer::tokenize_text(std::string_view text, bool after_special, std::vector<TokenId>& out) const {
  if (vocab_->kind() == VocabKind::SentencePiece) {
    // SentencePiece marks word starts with ▁; the text's first word gets one too.
    std::string prefixed = vocab_->add_space_prefix() && after_special ? " " : "";
    prefixed.append(text);
    spm_tokenize(*vocab_, spm_escape_spaces(prefixed), out);
    return;
  }
  if (vocab_->kind() == VocabKind::WordPiece) {
    wordpiece_tokenize(*vocab_, text, out);
    return;
  }
  const auto& bytes = ByteUnicodeMap::get();
  std::string word;
  for (Span s : pre_->split(text)) {
    word.clear();
    for (size_t i = s.begin; i < s.end; ++i) word += bytes.encode(static_cast<uint8_t>(text[i]));
    bpe_tokenize_word(*vocab_, word, pre_->ignore_merges(), out);
  }
}

const std::string& Tokenizer::piece(TokenId id, bool render_special) const {
  if (!vocab_->valid(id))
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                std::to_string(vocab_->size() - 1) + ")");
  TokenType t = vocab_->type(id);
  if (render_special && (t == TokenType::Control || t == TokenType::Unknown)) return vocab_->text(id);
  return pieces_[id];
}

std::string Tokenizer::detokenize(std::span<const TokenId> ids, bool render_special) const {
  std::string out;
  bool strip = strips_leading_space();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& p = piece(ids[i], render_special);
    if (i == 0 && ids[i] == vocab_->bos()) {
      out += p;
      continue;  // the space to strip belongs to the first token after BOS
    }
    if (strip && !p.empty() && p[0] == ' ')
      out.append(p, 1);
    else
      out += p;
    strip = false;
  }
  return out;
}

}  // namespace clusterctl::tokenizer
