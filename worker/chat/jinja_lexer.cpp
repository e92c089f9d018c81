// Template source -> segments (text and tags, whitespace control applied) -> tokens of a tag.
#include "worker/chat/jinja_lexer.h"

#include <cctype>
#include <string_view>

namespace clusterctl::chat {

std::string describe_position(const std::string& source, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}
namespace detail {

[[noreturn]] void fail_at(const std::string& source, size_t offset, const std::string& what) {
  throw TemplateError("chat template: " + what + " at " + describe_position(source, offset));
}

namespace {

// Finds the end of a tag, skipping string literals (a template may print "}}").
size_t find_tag_end(const std::string& src, size_t pos, const std::string& close, bool quote_aware) {
  while (pos < src.size()) {
    char c = src[pos];
    if (quote_aware && (c == '"' || c == '\'')) {
      for (++pos; pos < src.size() && src[pos] != c; ++pos) {
        if (src[pos] == '\\') ++pos;
      }
      ++pos;
      continue;
    }
    if (src.compare(pos, close.size(), close) == 0) return pos;
    ++pos;
  }
  return std::string::npos;
}

}  // namespace

std::vector<Segment> split_segments(const std::string& src) {
  std::vector<Segment> segs;
  size_t pos = 0;
  while (pos < src.size()) {
    size_t open = src.find('{', pos);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%' &&
           src[open + 1] != '#') {
      open = src.find('{', open + 1);
    }
    if (open == std::string::npos || open + 1 >= src.size()) {
      segs.push_back({Segment::Kind::text, src.substr(pos), pos});
      break;
    }
    if (open > pos) segs.push_back({Segment::Kind::text, src.substr(pos, open - pos), pos});
    char type = src[open + 1];
    Segment seg{type == '{'   ? Segment::Kind::expression
                : type == '%' ? Segment::Kind::statement
                              : Segment::Kind::comment,
                "", open + 2};
    size_t inner = open + 2;
    if (inner < src.size() && (src[inner] == '-' || src[inner] == '+')) {
      (src[inner] == '-' ? seg.trim_left : seg.keep_left) = true;
      ++inner;
    }
    std::string close = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
    size_t end = find_tag_end(src, inner, close, seg.kind != Segment::Kind::comment);
    if (end == std::string::npos) fail_at(src, open, "unclosed '{" + std::string(1, type) + "'");
    size_t content_end = end;
    if (content_end > inner && src[content_end - 1] == '-') {
      seg.trim_right = true;
      --content_end;
    }
    seg.content = src.substr(inner, content_end - inner);
    seg.offset = inner;
    segs.push_back(std::move(seg));
    pos = end + 2;
  }
  return segs;
}

namespace {
bool is_block(const Segment& s) { return s.kind == Segment::Kind::statement || s.kind == Segment::Kind::comment; }
}  // namespace

void apply_whitespace_control(std::vector<Segment>& segs, const std::string& src) {
  // Explicit '-' markers and trim_blocks (drop the first newline after a block tag).
  for (size_t i = 0; i < segs.size(); ++i) {
    Segment& s = segs[i];
    if (s.kind != Segment::Kind::text) continue;
    if (i > 0 && segs[i - 1].trim_right) {
      size_t n = 0;
      while (n < s.content.size() && std::isspace(static_cast<unsigned char>(s.content[n]))) ++n;
      s.content.erase(0, n);
      s.offset += n;
    } else if (i > 0 && is_block(segs[i - 1])) {
      if (s.content.rfind("\r\n", 0) == 0) {
        s.content.erase(0, 2);
        s.offset += 2;
      } else if (!s.content.empty() && s.content[0] == '\n') {
        s.content.erase(0, 1);
        s.offset += 1;
      }
    }
    if (i + 1 < segs.size() && segs[i + 1].trim_left) {
      while (!s.content.empty() && std::isspace(static_cast<unsigned char>(s.content.back()))) s.content.pop_back();
    }
  }
  // lstrip_blocks: spaces and tabs between the start of a line and a block tag go.
  for (size_t i = 1; i < segs.size(); ++i) {
    if (!is_block(segs[i]) || segs[i].trim_left || segs[i].keep_left) continue;
    Segment& t = segs[i - 1];
    if (t.kind != Segment::Kind::text) continue;
    size_t nl = t.content.rfind('\n');
    size_t from = nl == std::string::npos ? 0 : nl + 1;
    bool line_start = nl != std::string::npos || t.offset == 0 || src[t.offset - 1] == '\n';
    if (!line_start) continue;
    if (t.content.find_first_not_of(" \t", from) == std::string::npos) t.content.erase(from);
  }
}

std::vector<Token> tokenize(const std::string& src, const std::string& text, size_t base) {
  static const char* const kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                     ">",  "(",  ")",  "[",  "]",  "{",  "}", ".", ",", ":", "|", "="};
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    size_t start = i;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) ++i;
      tokens.push_back({Token::Kind::name, text.substr(start, i - start), base + start});
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
      bool is_float = i + 1 < text.size() && text[i] == '.' && std::isdigit(static_cast<unsigned char>(text[i + 1]));
      if (is_float) {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
      }
      tokens.push_back(
          {is_float ? Token::Kind::floating : Token::Kind::integer, text.substr(start, i - start), base + start});
    } else if (c == '\'' || c == '"') {
      std::string value;
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          char e = text[++i];
          switch (e) {
            case 'n':
              value += '\n';
              break;
            case 't':
              value += '\t';
              break;
            case 'r':
              value += '\r';
              break;
            case '\\':
              value += '\\';
              break;
            case '\'':
              value += '\'';
              break;
            case '"':
              value += '"';
              break;
            default:
              value += '\\';
              value += e;
          }
        } else {
          value += text[i];
        }
      }
      if (i >= text.size()) fail_at(src, base + start, "unterminated string literal");
      ++i;
      tokens.push_back({Token::Kind::string, value, base + start});
    } else {
      bool matched = false;
      for (const char* op : kOps) {
        std::string_view sv(op);
        if (text.compare(i, sv.size(), sv) == 0) {
          tokens.push_back({Token::Kind::op, std::string(sv), base + start});
          i += sv.size();
          matched = true;
          break;
        }
      }
      if (!matched) fail_at(src, base + start, std::string("unexpected character '") + c + "'");
    }
  }
  tokens.push_back({Token::Kind::end, "", base + text.size()});
  return tokens;
}
}  // namespace detail

}  // namespace clusterctl::chat
