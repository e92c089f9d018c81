#pragma once
// Recursive descent over one tag's tokens with Jinja's operator precedence: or, and, not,
// comparisons and `in`, + -, ~, * / // %, **, unary, then postfix (.attr [i] [a:b] (args)),
// filters (`| f(args)`) and tests (`is [not] t`).
#include <algorithm>
#include <string>
#include <vector>

#include "worker/chat/jinja_ast.h"
#include "worker/chat/jinja_lexer.h"

namespace clusterctl::chat::detail {

class ExprParser {
 public:
  ExprParser(const std::string& src, std::vector<Token> tokens) : src_(src), tokens_(std::move(tokens)) {}

  const Token& peek(size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  bool at_end() const { return peek().kind == Token::Kind::end; }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::op && peek(ahead).text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::name && peek(ahead).text == name;
  }
  const Token& next() { return tokens_[std::min(pos_++, tokens_.size() - 1)]; }
  void expect_op(const char* op) {
    if (!is_op(op)) fail_at(src_, peek().offset, std::string("expected '") + op + "'" + found());
    ++pos_;
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::name) fail_at(src_, peek().offset, "expected a name" + found());
    return next().text;
  }
  void expect_end() {
    if (!at_end()) fail_at(src_, peek().offset, "unexpected '" + peek().text + "'");
  }
  std::string found() const { return at_end() ? " but the tag ended" : ", found '" + peek().text + "'"; }

  ast::ExprPtr expression();  // with `a if cond else b`
  ast::ExprPtr or_expr();     // without it (a for loop's iterable and filter)

 private:
  ast::ExprPtr make(ast::Expr::Kind kind, size_t offset);
  ast::ExprPtr binary(ast::ExprPtr left, const Token& op, ast::ExprPtr (ExprParser::*operand)());
  ast::ExprPtr and_expr();
  ast::ExprPtr not_expr();
  ast::ExprPtr compare();
  ast::ExprPtr math1();
  ast::ExprPtr concat();
  ast::ExprPtr math2();
  ast::ExprPtr power();
  ast::ExprPtr unary();
  ast::ExprPtr primary();
  ast::ExprPtr postfix(ast::ExprPtr node);
  void call_arguments(ast::Expr& target);
  ast::ExprPtr filters_and_tests(ast::ExprPtr node);
  bool takes_bare_argument() const;

  const std::string& src_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace clusterctl::chat::detail
