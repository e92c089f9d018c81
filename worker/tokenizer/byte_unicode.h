#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace clusterctl::tokenizer {

// GPT-2's byte-level alphabet: every byte 0..255 stands for one printable code point, so
// byte-level BPE vocabularies can hold arbitrary bytes as text. Printable Latin-1 bytes
// stand for themselves; the others are moved to U+0100 and up, in byte order.
class ByteUnicodeMap {
 public:
  static const ByteUnicodeMap& get();

  // UTF-8 text of the code point that stands for `byte`.
  std::string_view encode(uint8_t byte) const { return encoded_[byte]; }
  // The byte a code point stands for, if it stands for one.
  std::optional<uint8_t> decode(char32_t cp) const;

 private:
  ByteUnicodeMap();
  std::array<std::string, 256> encoded_;
  std::array<int16_t, 512> decoded_;  // code point (< 512) -> byte, -1 when none
};

}  // namespace clusterctl::tokenizer
