// Template source -> syntax tree: segments and tokens from jinja_lexer.cpp, expressions from
// jinja_expression_parser.cpp; here the statements ({% if %}, {% for %}, {% set %}, macros)
// that nest bodies of segments.
#include "worker/chat/jinja_parser.h"

#include <set>

#include "worker/chat/jinja_expression_parser.h"

namespace clusterctl::chat {

namespace {

using ast::Body;
using ast::ExprPtr;
using ast::Node;
using detail::ExprParser;
using detail::fail_at;
using detail::Segment;
using detail::tokenize;

class StatementParser {
 public:
  StatementParser(const std::string& src, std::vector<Segment> segs) : src_(src), segs_(std::move(segs)) {}

  Body parse_all() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  // Parses until one of `terminators` (returned in `found`, with the tag's parser
  // positioned after the keyword) or the end of the template.
  Body parse_body(const std::set<std::string>& terminators, std::string& found) {
    Body body;
    while (pos_ < segs_.size()) {
      const Segment& seg = segs_[pos_++];
      switch (seg.kind) {
        case Segment::Kind::text:
          if (!seg.content.empty()) {
            auto n = std::make_unique<Node>();
            n->kind = Node::Kind::text;
            n->text = seg.content;
            n->offset = seg.offset;
            body.push_back(std::move(n));
          }
          break;
        case Segment::Kind::comment:
          break;
        case Segment::Kind::expression: {
          ExprParser p(src_, tokenize(src_, seg.content, seg.offset));
          auto n = std::make_unique<Node>();
          n->kind = Node::Kind::output;
          n->offset = seg.offset;
          n->expr = p.expression();
          p.expect_end();
          body.push_back(std::move(n));
          break;
        }
        case Segment::Kind::statement: {
          current_ = std::make_unique<ExprParser>(src_, tokenize(src_, seg.content, seg.offset));
          std::string keyword = current_->expect_name();
          if (terminators.count(keyword)) {
            found = keyword;
            return body;
          }
          body.push_back(statement(keyword, seg.offset));
          break;
        }
      }
    }
    if (!terminators.empty()) {
      fail_at(src_, src_.size(), "missing '{% " + *terminators.rbegin() + " %}'");
    }
    return body;
  }

  std::unique_ptr<Node> statement(const std::string& keyword, size_t offset) {
    auto n = std::make_unique<Node>();
    n->offset = offset;
    ExprParser& p = *current_;
    if (keyword == "if") {
      n->kind = Node::Kind::if_;
      ExprPtr cond = p.expression();
      p.expect_end();
      for (;;) {
        std::string found;
        Body branch = parse_body({"elif", "else", "endif"}, found);
        n->branches.emplace_back(std::move(cond), std::move(branch));
        if (found == "elif") {
          cond = current_->expression();
          current_->expect_end();
          continue;
        }
        if (found == "else") {
          current_->expect_end();
          std::string end;
          n->else_body = parse_body({"endif"}, end);
        }
        current_->expect_end();
        return n;
      }
    }
    if (keyword == "for") {
      n->kind = Node::Kind::for_;
      n->targets.push_back(p.expect_name());
      while (p.is_op(",")) {
        p.next();
        n->targets.push_back(p.expect_name());
      }
      if (!p.is_name("in")) fail_at(src_, p.peek().offset, "expected 'in'" + p.found());
      p.next();
      n->expr = p.or_expr();
      if (p.is_name("if")) {
        p.next();
        n->loop_filter = p.or_expr();
      }
      if (p.is_name("recursive")) fail_at(src_, p.peek().offset, "recursive loops are not supported");
      p.expect_end();
      std::string found;
      n->body = parse_body({"else", "endfor"}, found);
      if (found == "else") {
        current_->expect_end();
        n->else_body = parse_body({"endfor"}, found);
      }
      current_->expect_end();
      return n;
    }
    if (keyword == "set") {
      n->kind = Node::Kind::set;
      n->targets.push_back(p.expect_name());
      if (p.is_op(".")) {
        p.next();
        n->attribute = p.expect_name();
      }
      if (p.is_op("=")) {
        p.next();
        n->expr = p.expression();
        p.expect_end();
      } else {  // {% set x %}...{% endset %}: the body's output becomes the value
        p.expect_end();
        std::string found;
        n->body = parse_body({"endset"}, found);
        current_->expect_end();
      }
      return n;
    }
    if (keyword == "macro") {  // {% macro name(a, b=default) %}...{% endmacro %}
      n->kind = Node::Kind::macro;
      n->targets.push_back(p.expect_name());
      if (!p.is_op("(")) fail_at(src_, p.peek().offset, "expected '(' after the macro's name" + p.found());
      p.next();
      while (!p.is_op(")")) {
        std::string param = p.expect_name();
        ExprPtr dflt;
        if (p.is_op("=")) {
          p.next();
          dflt = p.expression();
        }
        n->params.emplace_back(std::move(param), std::move(dflt));
        if (!p.is_op(",")) break;
        p.next();
      }
      if (!p.is_op(")")) fail_at(src_, p.peek().offset, "expected ')' closing the macro's parameters" + p.found());
      p.next();
      p.expect_end();
      std::string found;
      n->body = parse_body({"endmacro"}, found);
      current_->expect_end();
      return n;
    }
    if (keyword == "generation") {  // transformers' assistant-mask marker: renders its body unchanged
      p.expect_end();
      n->kind = Node::Kind::if_;
      auto always = std::make_unique<ast::Expr>();
      always->kind = ast::Expr::Kind::literal;
      always->value = Value::boolean(true);
      std::string found;
      n->branches.emplace_back(std::move(always), parse_body({"endgeneration"}, found));
      current_->expect_end();
      return n;
    }
    if (keyword == "break" || keyword == "continue") {
      p.expect_end();
      n->kind = keyword == "break" ? Node::Kind::break_ : Node::Kind::continue_;
      return n;
    }
    fail_at(src_, offset, "unsupported tag '" + keyword + "'");
  }

  const std::string& src_;
  std::vector<Segment> segs_;
  size_t pos_ = 0;
  std::unique_ptr<ExprParser> current_;
};

}  // namespace

ast::Body parse_template(const std::string& source) {
  std::vector<detail::Segment> segs = detail::split_segments(source);
  detail::apply_whitespace_control(segs, source);
  return StatementParser(source, std::move(segs)).parse_all();
}

}  // namespace clusterctl::chat
