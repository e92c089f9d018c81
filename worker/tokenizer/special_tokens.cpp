#include "worker/tokenizer/special_tokens.h"

namespace clusterctl::tokenizer {

std::vector<Fragment> split_special_tokens(const Vocab& vocab, std::string_view text, bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (TokenId special : vocab.special_tokens()) {
    TokenType type = vocab.type(special);
    if (!parse_special && type != TokenType::UserDefined) continue;
    std::string_view needle = vocab.text(special);
    next.clear();
    bool found = false;
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.begin;
      while (pos < f.end) {
        size_t at = text.substr(0, f.end).find(needle, pos);
        if (at == std::string_view::npos) break;
        found = true;
        if (at > pos) next.push_back({kNoToken, pos, at});
        next.push_back({special, at, at + needle.size()});
        pos = at + needle.size();
      }
      if (pos < f.end) next.push_back({kNoToken, pos, f.end});
    }
    if (found) fragments.swap(next);
  }
  return fragments;
}

}  // namespace clusterctl::tokenizer
