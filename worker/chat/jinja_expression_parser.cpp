// The expression parser's grammar rules, lowest precedence first.
#include "worker/chat/jinja_expression_parser.h"

#include <set>

namespace clusterctl::chat::detail {

using ast::Expr;
using ast::ExprPtr;

ExprPtr ExprParser::expression() {
  ExprPtr value = or_expr();
  if (is_name("if")) {
    size_t at = next().offset;
    auto node = make(Expr::Kind::conditional, at);
    node->args.push_back(or_expr());
    node->object = std::move(value);
    if (is_name("else")) {
      next();
      node->args.push_back(expression());
    } else {
      node->args.push_back(make(Expr::Kind::literal, at));  // undefined, as in Jinja
    }
    return node;
  }
  return value;
}

ExprPtr ExprParser::or_expr() {
  ExprPtr left = and_expr();
  while (is_name("or")) left = binary(std::move(left), next(), &ExprParser::and_expr);
  return left;
}

ExprPtr ExprParser::make(Expr::Kind kind, size_t offset) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->offset = offset;
  return e;
}
ExprPtr ExprParser::binary(ExprPtr left, const Token& op, ExprPtr (ExprParser::*operand)()) {
  auto node = make(Expr::Kind::binary, op.offset);
  node->name = op.text;
  node->object = std::move(left);
  node->args.push_back((this->*operand)());
  return node;
}

ExprPtr ExprParser::and_expr() {
  ExprPtr left = not_expr();
  while (is_name("and")) left = binary(std::move(left), next(), &ExprParser::not_expr);
  return left;
}
ExprPtr ExprParser::not_expr() {
  if (is_name("not")) {
    auto node = make(Expr::Kind::unary, next().offset);
    node->name = "not";
    node->object = not_expr();
    return node;
  }
  return compare();
}
ExprPtr ExprParser::compare() {
  ExprPtr left = math1();
  for (;;) {
    const Token& t = peek();
    if (t.kind == Token::Kind::op &&
        (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">=")) {
      left = binary(std::move(left), next(), &ExprParser::math1);
    } else if (is_name("in")) {
      left = binary(std::move(left), next(), &ExprParser::math1);
    } else if (is_name("not") && is_name("in", 1)) {
      Token op = next();
      next();
      op.text = "not in";
      left = binary(std::move(left), op, &ExprParser::math1);
    } else {
      return left;
    }
  }
}
ExprPtr ExprParser::math1() {
  ExprPtr left = concat();
  while (is_op("+") || is_op("-")) left = binary(std::move(left), next(), &ExprParser::concat);
  return left;
}
ExprPtr ExprParser::concat() {
  ExprPtr left = math2();
  while (is_op("~")) left = binary(std::move(left), next(), &ExprParser::math2);
  return left;
}
ExprPtr ExprParser::math2() {
  ExprPtr left = power();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%"))
    left = binary(std::move(left), next(), &ExprParser::power);
  return left;
}
ExprPtr ExprParser::power() {
  ExprPtr left = unary();
  while (is_op("**")) left = binary(std::move(left), next(), &ExprParser::unary);
  return left;
}
ExprPtr ExprParser::unary() {
  if (is_op("-") || is_op("+")) {
    const Token& op = next();
    auto node = make(Expr::Kind::unary, op.offset);
    node->name = op.text;
    node->object = unary();
    return node;
  }
  ExprPtr node = postfix(primary());
  return filters_and_tests(std::move(node));
}

ExprPtr ExprParser::primary() {
  const Token& t = peek();
  switch (t.kind) {
    case Token::Kind::name: {
      next();
      auto node = make(Expr::Kind::literal, t.offset);
      if (t.text == "true" || t.text == "True")
        node->value = Value::boolean(true);
      else if (t.text == "false" || t.text == "False")
        node->value = Value::boolean(false);
      else if (t.text == "none" || t.text == "None")
        node->value = Value::none();
      else {
        node->kind = Expr::Kind::name;
        node->name = t.text;
      }
      return node;
    }
    case Token::Kind::string: {
      auto node = make(Expr::Kind::literal, t.offset);
      std::string s;
      while (peek().kind == Token::Kind::string) s += next().text;  // "a" "b" concatenates
      node->value = Value::string(std::move(s));
      return node;
    }
    case Token::Kind::integer: {
      next();
      auto node = make(Expr::Kind::literal, t.offset);
      node->value = Value::integer(std::stoll(t.text));
      return node;
    }
    case Token::Kind::floating: {
      next();
      auto node = make(Expr::Kind::literal, t.offset);
      node->value = Value::floating(std::stod(t.text));
      return node;
    }
    case Token::Kind::op:
      if (t.text == "(") {
        next();
        ExprPtr inner = expression();
        if (is_op(",")) {  // a tuple: treated as a list
          auto list = make(Expr::Kind::list, t.offset);
          list->args.push_back(std::move(inner));
          while (is_op(",")) {
            next();
            if (is_op(")")) break;
            list->args.push_back(expression());
          }
          inner = std::move(list);
        }
        expect_op(")");
        return inner;
      }
      if (t.text == "[") {
        next();
        auto list = make(Expr::Kind::list, t.offset);
        while (!is_op("]")) {
          list->args.push_back(expression());
          if (!is_op(",")) break;
          next();
        }
        expect_op("]");
        return list;
      }
      if (t.text == "{") {
        next();
        auto dict = make(Expr::Kind::dict, t.offset);
        while (!is_op("}")) {
          ExprPtr key = expression();
          if (key->kind != Expr::Kind::literal || !key->value.is_string()) {
            fail_at(src_, key->offset, "dict keys must be string literals");
          }
          expect_op(":");
          dict->kwargs.emplace_back(key->value.as_string(), expression());
          if (!is_op(",")) break;
          next();
        }
        expect_op("}");
        return dict;
      }
      break;
    case Token::Kind::end:
      break;
  }
  fail_at(src_, t.offset, "expected an expression" + found());
}

ExprPtr ExprParser::postfix(ExprPtr node) {
  for (;;) {
    if (is_op(".")) {
      size_t at = next().offset;
      auto attr = make(Expr::Kind::attribute, at);
      if (peek().kind == Token::Kind::integer) {  // x.0 means x[0]
        attr->kind = Expr::Kind::index;
        auto idx = make(Expr::Kind::literal, peek().offset);
        idx->value = Value::integer(std::stoll(next().text));
        attr->args.push_back(std::move(idx));
      } else {
        attr->name = expect_name();
      }
      attr->object = std::move(node);
      node = std::move(attr);
    } else if (is_op("[")) {
      size_t at = next().offset;
      auto sub = make(Expr::Kind::index, at);
      sub->object = std::move(node);
      ExprPtr first = is_op(":") ? nullptr : expression();
      if (is_op(":")) {
        sub->kind = Expr::Kind::slice;
        next();
        ExprPtr stop = (is_op(":") || is_op("]")) ? nullptr : expression();
        ExprPtr step;
        if (is_op(":")) {
          next();
          if (!is_op("]")) step = expression();
        }
        sub->args.push_back(std::move(first));
        sub->args.push_back(std::move(stop));
        sub->args.push_back(std::move(step));
      } else {
        sub->args.push_back(std::move(first));
      }
      expect_op("]");
      node = std::move(sub);
    } else if (is_op("(")) {
      auto call = make(Expr::Kind::call, peek().offset);
      call->object = std::move(node);
      call_arguments(*call);
      node = std::move(call);
    } else {
      return node;
    }
  }
}

void ExprParser::call_arguments(Expr& target) {
  expect_op("(");
  while (!is_op(")")) {
    if (peek().kind == Token::Kind::name && is_op("=", 1)) {
      std::string key = next().text;
      next();
      target.kwargs.emplace_back(std::move(key), expression());
    } else {
      target.args.push_back(expression());
    }
    if (!is_op(",")) break;
    next();
  }
  expect_op(")");
}

ExprPtr ExprParser::filters_and_tests(ExprPtr node) {
  for (;;) {
    if (is_op("|")) {
      size_t at = next().offset;
      auto f = make(Expr::Kind::filter, at);
      f->name = expect_name();
      f->object = std::move(node);
      if (is_op("(")) call_arguments(*f);
      node = postfix(std::move(f));
    } else if (is_name("is")) {
      size_t at = next().offset;
      auto t = make(Expr::Kind::test, at);
      if (is_name("not")) {
        next();
        t->negated = true;
      }
      t->name = expect_name();
      t->object = std::move(node);
      if (is_op("(")) {
        call_arguments(*t);
      } else if (takes_bare_argument()) {
        t->args.push_back(primary());
      }
      node = std::move(t);
    } else {
      return node;
    }
  }
}
bool ExprParser::takes_bare_argument() const {
  static const std::set<std::string> kStop = {"and", "or", "else", "if", "in", "is", "not"};
  const Token& t = peek();
  if (t.kind == Token::Kind::string || t.kind == Token::Kind::integer || t.kind == Token::Kind::floating) return true;
  return t.kind == Token::Kind::name && !kStop.count(t.text);
}
}  // namespace clusterctl::chat::detail
