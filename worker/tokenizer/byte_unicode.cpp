#include "worker/tokenizer/byte_unicode.h"

#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {

const ByteUnicodeMap& ByteUnicodeMap::get() {
  static const ByteUnicodeMap map;
  return map;
}

ByteUnicodeMap::ByteUnicodeMap() {
  decoded_.fill(-1);
  auto printable = [](int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  char32_t next_moved = 0x100;
  for (int b = 0; b < 256; ++b) {
    char32_t cp = printable(b) ? static_cast<char32_t>(b) : next_moved++;
    utf8::append(encoded_[b], cp);
    decoded_[cp] = static_cast<int16_t>(b);
  }
}

std::optional<uint8_t> ByteUnicodeMap::decode(char32_t cp) const {
  if (cp >= decoded_.size() || decoded_[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(decoded_[cp]);
}

}  // namespace clusterctl::tokenizer
