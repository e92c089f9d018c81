#include "worker/tokenizer/stream_decoder.h"

#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(tokenizer), render_special_(render_special) {}

std::string StreamDecoder::push(TokenId id) {
  std::string_view p = tokenizer_.piece(id, render_special_);
  if (at_start_) {
    if (id == tokenizer_.vocab().bos()) return std::string(p);  // the space to strip comes after BOS
    if (tokenizer_.strips_leading_space() && !p.empty() && p[0] == ' ') p.remove_prefix(1);
    at_start_ = false;
  }
  pending_.append(p);
  size_t ready = utf8::complete_prefix(pending_);
  std::string out = utf8::sanitize(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  at_start_ = true;
  return out;
}

}  // namespace clusterctl::tokenizer
