// The UTF-8 helpers the streaming decoder and the pre-tokenizer rely on.
#include <gtest/gtest.h>

#include "worker/tokenizer/byte_unicode.h"
#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {
namespace {

TEST(Utf8, CompletePrefixHoldsBackOnlyUnfinishedCharacters) {
  EXPECT_EQ(utf8::complete_prefix(""), 0u);
  EXPECT_EQ(utf8::complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8::complete_prefix("a\xF0\x9F\xA6\x99"), 5u);  // 🦙 complete
  EXPECT_EQ(utf8::complete_prefix("a\xF0"), 1u);
  EXPECT_EQ(utf8::complete_prefix("a\xF0\x9F"), 1u);
  EXPECT_EQ(utf8::complete_prefix("a\xF0\x9F\xA6"), 1u);
  EXPECT_EQ(utf8::complete_prefix("a\xC3"), 1u);
  // Bytes that can never become a character are not waited for.
  EXPECT_EQ(utf8::complete_prefix("a\xFF"), 2u);
  EXPECT_EQ(utf8::complete_prefix("a\x80"), 2u);
  EXPECT_EQ(utf8::complete_prefix("a\xE0\x80"), 3u);  // would be overlong
  EXPECT_EQ(utf8::complete_prefix("a\xED\xA0"), 3u);  // would be a surrogate
}

TEST(Utf8, DecodeRejectsMalformedSequencesOneByteAtATime) {
  for (std::string bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\x80"}) {
    auto d = utf8::decode(bad, 0);
    EXPECT_FALSE(d.valid);
    EXPECT_EQ(d.len, 1u);
  }
  auto ok = utf8::decode("\xE2\x82\xAC", 0);
  EXPECT_TRUE(ok.valid);
  EXPECT_EQ(ok.cp, U'€');
  EXPECT_EQ(utf8::sanitize("a\xFF"
                           "b"),
            "a\xEF\xBF\xBD"
            "b");
}

TEST(ByteUnicodeMap, EveryByteHasItsOwnPrintableCharacter) {
  const auto& map = ByteUnicodeMap::get();
  EXPECT_EQ(map.encode(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(map.encode('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(map.encode('A'), "A");
  for (int b = 0; b < 256; ++b) {
    auto d = utf8::decode(map.encode(static_cast<uint8_t>(b)), 0);
    ASSERT_TRUE(d.valid);
    ASSERT_EQ(map.decode(d.cp), static_cast<uint8_t>(b));
  }
}

}  // namespace
}  // namespace clusterctl::tokenizer
