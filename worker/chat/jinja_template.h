#pragma once
#include <memory>
#include <string>

#include "worker/chat/jinja_value.h"
#include "worker/common/error.h"

namespace clusterctl::chat {

namespace ast {
struct Node;
}

// A template that does not parse, or that fails while rendering (an unknown filter,
// `raise_exception(...)` in the template, adding a string to a list ...).
class TemplateError : public Error {
 public:
  using Error::Error;
};

// A compiled template of the Jinja subset that Hugging Face `tokenizer.chat_template`
// strings use. Whitespace handling is that of transformers' chat-template environment:
// trim_blocks and lstrip_blocks on, plus explicit `{%- -%}` / `{{- -}}` control.
class JinjaTemplate {
 public:
  explicit JinjaTemplate(std::string source);  // throws TemplateError naming the position
  ~JinjaTemplate();
  JinjaTemplate(JinjaTemplate&&) noexcept;
  JinjaTemplate& operator=(JinjaTemplate&&) noexcept;

  // `context` must be a dict: its entries are the template's global variables.
  std::string render(const Value& context) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::unique_ptr<std::vector<std::unique_ptr<ast::Node>>> body_;
};

// "line L, column C" of a byte offset, for messages.
std::string describe_position(const std::string& source, size_t offset);

}  // namespace clusterctl::chat
