// Template source -> syntax tree: splitting into text and tags (with the whitespace
// rules of transformers' chat-template environment), then recursive descent over the
// tags with Jinja's operator precedence.
#include "worker/chat/jinja_parser.h"

#include <cctype>
#include <set>

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

namespace {

[[noreturn]] void fail(const std::string& source, size_t offset, const std::string& what) {
  throw TemplateError("chat template: " + what + " at " + describe_position(source, offset));
}

// ---------------------------------------------------------------- segments

struct Segment {
  enum class Kind { text, expression, statement, comment } kind;
  std::string content;
  size_t offset = 0;        // where the content starts in the source
  bool trim_left = false;   // {%- {{- {#-
  bool trim_right = false;  // -%} -}} -#}
  bool keep_left = false;   // {%+ : disables lstrip_blocks
};

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
    if (end == std::string::npos) fail(src, open, "unclosed '{" + std::string(1, type) + "'");
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

bool is_block(const Segment& s) { return s.kind == Segment::Kind::statement || s.kind == Segment::Kind::comment; }

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

// ---------------------------------------------------------------- expression tokens

struct Token {
  enum class Kind { name, string, integer, floating, op, end } kind;
  std::string text;
  size_t offset;
};

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
      if (i >= text.size()) fail(src, base + start, "unterminated string literal");
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
      if (!matched) fail(src, base + start, std::string("unexpected character '") + c + "'");
    }
  }
  tokens.push_back({Token::Kind::end, "", base + text.size()});
  return tokens;
}

// ---------------------------------------------------------------- expressions

using ast::Expr;
using ast::ExprPtr;

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
    if (!is_op(op)) fail(src_, peek().offset, std::string("expected '") + op + "'" + found());
    ++pos_;
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::name) fail(src_, peek().offset, "expected a name" + found());
    return next().text;
  }
  void expect_end() {
    if (!at_end()) fail(src_, peek().offset, "unexpected '" + peek().text + "'");
  }
  std::string found() const { return at_end() ? " but the tag ended" : ", found '" + peek().text + "'"; }

  ExprPtr expression() {
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

  ExprPtr or_expr() {
    ExprPtr left = and_expr();
    while (is_name("or")) left = binary(std::move(left), next(), &ExprParser::and_expr);
    return left;
  }

 private:
  ExprPtr make(Expr::Kind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }
  ExprPtr binary(ExprPtr left, const Token& op, ExprPtr (ExprParser::*operand)()) {
    auto node = make(Expr::Kind::binary, op.offset);
    node->name = op.text;
    node->object = std::move(left);
    node->args.push_back((this->*operand)());
    return node;
  }

  ExprPtr and_expr() {
    ExprPtr left = not_expr();
    while (is_name("and")) left = binary(std::move(left), next(), &ExprParser::not_expr);
    return left;
  }
  ExprPtr not_expr() {
    if (is_name("not")) {
      auto node = make(Expr::Kind::unary, next().offset);
      node->name = "not";
      node->object = not_expr();
      return node;
    }
    return compare();
  }
  ExprPtr compare() {
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
  ExprPtr math1() {
    ExprPtr left = concat();
    while (is_op("+") || is_op("-")) left = binary(std::move(left), next(), &ExprParser::concat);
    return left;
  }
  ExprPtr concat() {
    ExprPtr left = math2();
    while (is_op("~")) left = binary(std::move(left), next(), &ExprParser::math2);
    return left;
  }
  ExprPtr math2() {
    ExprPtr left = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%"))
      left = binary(std::move(left), next(), &ExprParser::power);
    return left;
  }
  ExprPtr power() {
    ExprPtr left = unary();
    while (is_op("**")) left = binary(std::move(left), next(), &ExprParser::unary);
    return left;
  }
  ExprPtr unary() {
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

  ExprPtr primary() {
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
              fail(src_, key->offset, "dict keys must be string literals");
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
    fail(src_, t.offset, "expected an expression" + found());
  }

  ExprPtr postfix(ExprPtr node) {
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

  void call_arguments(Expr& target) {
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

  ExprPtr filters_and_tests(ExprPtr node) {
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
  bool takes_bare_argument() const {
    static const std::set<std::string> kStop = {"and", "or", "else", "if", "in", "is", "not"};
    const Token& t = peek();
    if (t.kind == Token::Kind::string || t.kind == Token::Kind::integer || t.kind == Token::Kind::floating) return true;
    return t.kind == Token::Kind::name && !kStop.count(t.text);
  }

  const std::string& src_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------- statements

using ast::Body;
using ast::Node;

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
      fail(src_, src_.size(), "missing '{% " + *terminators.rbegin() + " %}'");
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
      if (!p.is_name("in")) fail(src_, p.peek().offset, "expected 'in'" + p.found());
      p.next();
      n->expr = p.or_expr();
      if (p.is_name("if")) {
        p.next();
        n->loop_filter = p.or_expr();
      }
      if (p.is_name("recursive")) fail(src_, p.peek().offset, "recursive loops are not supported");
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
      if (!p.is_op("(")) fail(src_, p.peek().offset, "expected '(' after the macro's name" + p.found());
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
      if (!p.is_op(")")) fail(src_, p.peek().offset, "expected ')' closing the macro's parameters" + p.found());
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
    fail(src_, offset, "unsupported tag '" + keyword + "'");
  }

  const std::string& src_;
  std::vector<Segment> segs_;
  size_t pos_ = 0;
  std::unique_ptr<ExprParser> current_;
};

}  // namespace

Body parse_template(const std::string& source) {
  std::vector<Segment> segs = split_segments(source);
  apply_whitespace_control(segs, source);
  return StatementParser(source, std::move(segs)).parse_all();
}

}  // namespace clusterctl::chat
