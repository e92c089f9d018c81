#pragma once
// The first steps of parsing a template: its source split into text and tags (with the
// whitespace rules of transformers' chat-template environment), and a tag's expression
// text split into tokens. jinja_expression_parser.h and jinja_parser.cpp read what these give.
#include <string>
#include <vector>

#include "worker/chat/jinja_template.h"

namespace clusterctl::chat::detail {

// Throws the TemplateError of a template that does not parse, naming line and column.
[[noreturn]] void fail_at(const std::string& source, size_t offset, const std::string& what);

// A run of text or one tag ({{ }}, {% %}, {# #}) of the template source.
struct Segment {
  enum class Kind { text, expression, statement, comment } kind;
  std::string content;
  size_t offset = 0;        // where the content starts in the source
  bool trim_left = false;   // {%- {{- {#-
  bool trim_right = false;  // -%} -}} -#}
  bool keep_left = false;   // {%+ : disables lstrip_blocks
};

std::vector<Segment> split_segments(const std::string& src);
// Applies '-' markers, trim_blocks and lstrip_blocks to the text segments.
void apply_whitespace_control(std::vector<Segment>& segs, const std::string& src);

struct Token {
  enum class Kind { name, string, integer, floating, op, end } kind;
  std::string text;
  size_t offset;
};

// The tokens of a tag's `text`, which starts at `base` in `src`; the last is Kind::end.
std::vector<Token> tokenize(const std::string& src, const std::string& text, size_t base);

}  // namespace clusterctl::chat::detail
