#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer::utf8 {
namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Bytes a sequence starting with `lead` has, or 0 if `lead` cannot start one.
size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// The second byte of E0/ED/F0/F4 sequences has a narrower range (no overlong forms,
// no surrogates, nothing past U+10FFFF).
bool second_byte_ok(unsigned char lead, unsigned char b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return is_continuation(b);
  }
}

}  // namespace

Decoded decode(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  size_t avail = s.size() - pos;
  size_t n = sequence_length(p[0]);
  if (n == 1) return {p[0], 1, true};
  if (n == 0 || n > avail) return {kReplacement, 1, false};
  for (size_t i = 1; i < n; ++i)
    if (!is_continuation(p[i])) return {kReplacement, 1, false};
  char32_t cp = 0;
  if (n == 2) cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  if (n == 3) cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  if (n == 4) cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
  bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  if (overlong || surrogate || cp > 0x10FFFF) return {kReplacement, 1, false};
  return {cp, n, true};
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t complete_prefix(std::string_view s) {
  // Only the last three bytes can belong to an unfinished sequence.
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    auto lead = static_cast<unsigned char>(s[n - back]);
    if (is_continuation(lead)) continue;
    size_t need = sequence_length(lead);
    if (need <= back) return n;  // complete, or a byte that can never start a sequence
    if (back >= 2 && !second_byte_ok(lead, static_cast<unsigned char>(s[n - back + 1]))) return n;
    return n - back;  // a valid beginning still waiting for its last bytes
  }
  return n;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    Decoded d = decode(s, i);
    if (d.valid)
      out.append(s.substr(i, d.len));
    else
      append(out, kReplacement);
    i += d.len;
  }
  return out;
}

}  // namespace clusterctl::tokenizer::utf8
