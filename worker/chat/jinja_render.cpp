// Walks the syntax tree with Python/Jinja semantics: truthiness, scoping of loop
// variables, Undefined that prints as "" but fails when used as an object.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include "worker/chat/jinja_parser.h"

namespace clusterctl::chat {

namespace {

using ast::Body;
using ast::Expr;
using ast::Node;

enum class Flow { normal, break_, continue_ };

const std::set<std::string>& builtin_functions() {
  static const std::set<std::string> kFunctions = {"raise_exception", "namespace", "range", "strftime_now", "dict"};
  return kFunctions;
}

// "a string", "an integer" ...: the value's type as messages name it.
std::string kind_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
      return "an undefined value";
    case Value::Kind::none:
      return "none";
    case Value::Kind::boolean:
      return "a boolean";
    case Value::Kind::integer:
      return "an integer";
    case Value::Kind::floating:
      return "a float";
    case Value::Kind::string:
      return "a string";
    case Value::Kind::list:
      return "a list";
    case Value::Kind::dict:
      return "a dict";
  }
  return "?";
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string strip(const std::string& s, bool left, bool right, const std::string* chars = nullptr) {
  auto strip_char = [&](char c) { return chars ? chars->find(c) != std::string::npos : is_space(c); };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && strip_char(s[b])) ++b;
  if (right)
    while (e > b && strip_char(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string to_case(std::string s, bool upper) {
  for (char& c : s)
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string title(std::string s) {
  bool at_word_start = true;
  for (char& c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(at_word_start ? std::toupper(u) : std::tolower(u));
      at_word_start = false;
    } else {
      at_word_start = true;
    }
  }
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

class Renderer {
 public:
  Renderer(const std::string& src, const Value& context) : src_(src) {
    frames_.emplace_back();
    if (context.is_dict()) {
      for (const auto& [k, v] : context.entries()) frames_.back()[k] = v;
    }
  }

  std::string run(const Body& body) {
    render(body);
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(size_t offset, const std::string& what) const {
    throw TemplateError("chat template: " + what + " at " + describe_position(src_, offset));
  }

  // ------------------------------------------------------------ statements

  Flow render(const Body& body) {
    for (const auto& node : body) {
      Flow f = render(*node);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Flow render(const Node& n) {
    switch (n.kind) {
      case Node::Kind::text:
        out_ += n.text;
        return Flow::normal;
      case Node::Kind::output:
        out_ += eval(*n.expr).str();
        return Flow::normal;
      case Node::Kind::if_:
        for (const auto& [cond, body] : n.branches) {
          if (eval(*cond).truthy()) return render(body);
        }
        return render(n.else_body);
      case Node::Kind::for_:
        return render_for(n);
      case Node::Kind::set: {
        Value v;
        if (n.expr) {
          v = eval(*n.expr);
        } else {
          std::string saved = std::move(out_);
          out_.clear();
          render(n.body);
          v = Value::string(std::move(out_));
          out_ = std::move(saved);
        }
        if (n.attribute.empty()) {
          frames_.back()[n.targets[0]] = std::move(v);
        } else {
          Value target = lookup(n.targets[0]);
          if (!target.is_namespace())
            fail(n.offset, "'" + n.targets[0] + "' is not a namespace, so '" + n.targets[0] + "." + n.attribute +
                               "' cannot be set");
          target.set(n.attribute, std::move(v));
        }
        return Flow::normal;
      }
      case Node::Kind::macro:
        macros_[n.targets[0]] = &n;
        return Flow::normal;
      case Node::Kind::break_:
        return Flow::break_;
      case Node::Kind::continue_:
        return Flow::continue_;
    }
    return Flow::normal;
  }

  Flow render_for(const Node& n) {
    Value iterable = eval(*n.expr);
    std::vector<Value> items;
    switch (iterable.kind()) {
      case Value::Kind::undefined:
        break;
      case Value::Kind::list:
        items = iterable.items();
        break;
      case Value::Kind::dict:
        for (const auto& entry : iterable.entries()) items.push_back(Value::string(entry.first));
        break;
      case Value::Kind::string:
        for (char c : iterable.as_string()) items.push_back(Value::string(std::string(1, c)));
        break;
      default:
        fail(n.expr->offset, "cannot loop over " + kind_name(iterable));
    }
    if (n.loop_filter) {
      std::vector<Value> kept;
      for (auto& item : items) {
        frames_.emplace_back();
        bind_targets(n, item);
        if (eval(*n.loop_filter).truthy()) kept.push_back(item);
        frames_.pop_back();
      }
      items = std::move(kept);
    }
    if (items.empty()) return render(n.else_body);
    const int64_t length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      frames_.emplace_back();
      bind_targets(n, items[static_cast<size_t>(i)]);
      Value loop = Value::dict({
          {"index0", Value::integer(i)},
          {"index", Value::integer(i + 1)},
          {"revindex0", Value::integer(length - i - 1)},
          {"revindex", Value::integer(length - i)},
          {"first", Value::boolean(i == 0)},
          {"last", Value::boolean(i == length - 1)},
          {"length", Value::integer(length)},
          {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value()},
          {"nextitem", i + 1 < length ? items[static_cast<size_t>(i + 1)] : Value()},
      });
      frames_.back()["loop"] = loop;
      Flow f = render(n.body);
      frames_.pop_back();
      if (f == Flow::break_) break;
    }
    return Flow::normal;
  }

  void bind_targets(const Node& n, const Value& item) {
    if (n.targets.size() == 1) {
      frames_.back()[n.targets[0]] = item;
      return;
    }
    if (!item.is_list() || item.items().size() != n.targets.size()) {
      fail(n.offset,
           "cannot unpack " + kind_name(item) + " into " + std::to_string(n.targets.size()) + " loop variables");
    }
    for (size_t k = 0; k < n.targets.size(); ++k) frames_.back()[n.targets[k]] = item.items()[k];
  }

  // ------------------------------------------------------------ expressions

  bool has_variable(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      if (it->count(name)) return true;
    }
    return false;
  }

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value();
  }

  void require_defined(const Value& v, const Expr& e, const std::string& use) const {
    if (v.is_undefined()) fail(e.offset, describe(e) + " is undefined, so " + use + " is not possible");
  }

  std::string describe(const Expr& e) const {
    switch (e.kind) {
      case Expr::Kind::name:
        return "'" + e.name + "'";
      case Expr::Kind::attribute:
        return describe(*e.object) + "." + e.name;
      case Expr::Kind::index:
        return describe(*e.object) + "[...]";
      default:
        return "the value";
    }
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::literal:
        return e.value;
      case Expr::Kind::name:
        return lookup(e.name);
      case Expr::Kind::list: {
        Value::List items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        return Value::list(std::move(items));
      }
      case Expr::Kind::dict: {
        Value::Dict entries;
        for (const auto& [k, v] : e.kwargs) entries.emplace_back(k, eval(*v));
        return Value::dict(std::move(entries));
      }
      case Expr::Kind::attribute: {
        Value obj = eval(*e.object);
        require_defined(obj, *e.object, "reading '." + e.name + "'");
        return obj.get(e.name);
      }
      case Expr::Kind::index:
        return index(e, eval(*e.object), eval(*e.args[0]));
      case Expr::Kind::slice:
        return slice(e);
      case Expr::Kind::call:
        return call(e);
      case Expr::Kind::filter:
        return filter(e);
      case Expr::Kind::test: {
        bool result = test(e);
        return Value::boolean(e.negated ? !result : result);
      }
      case Expr::Kind::unary: {
        Value v = eval(*e.object);
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (!v.is_number()) fail(e.offset, "unary '" + e.name + "' needs a number, not " + kind_name(v));
        if (e.name == "+") return v;
        return v.kind() == Value::Kind::integer ? Value::integer(-v.as_int()) : Value::floating(-v.as_double());
      }
      case Expr::Kind::binary:
        return binary(e);
      case Expr::Kind::conditional:
        return eval(*e.args[0]).truthy() ? eval(*e.object) : eval(*e.args[1]);
    }
    return Value();
  }

  Value index(const Expr& e, const Value& obj, const Value& key) {
    require_defined(obj, *e.object, "indexing it");
    if (obj.is_dict()) return obj.get(key.is_string() ? key.as_string() : key.str());
    if (obj.is_list() || obj.is_string()) {
      if (key.kind() != Value::Kind::integer) fail(e.offset, kind_name(obj) + " index must be an integer");
      int64_t size =
          obj.is_list() ? static_cast<int64_t>(obj.items().size()) : static_cast<int64_t>(obj.as_string().size());
      int64_t i = key.as_int() < 0 ? key.as_int() + size : key.as_int();
      if (i < 0 || i >= size) return Value();
      return obj.is_list() ? obj.items()[static_cast<size_t>(i)]
                           : Value::string(std::string(1, obj.as_string()[static_cast<size_t>(i)]));
    }
    fail(e.offset, "cannot index " + kind_name(obj));
  }

  Value slice(const Expr& e) {
    Value obj = eval(*e.object);
    require_defined(obj, *e.object, "slicing it");
    if (!obj.is_list() && !obj.is_string()) fail(e.offset, "cannot slice " + kind_name(obj));
    auto bound = [&](const ast::ExprPtr& p) -> std::optional<int64_t> {
      if (!p) return std::nullopt;
      Value v = eval(*p);
      if (v.is_none()) return std::nullopt;
      if (v.kind() != Value::Kind::integer) fail(p->offset, "slice bounds must be integers");
      return v.as_int();
    };
    const int64_t size =
        obj.is_list() ? static_cast<int64_t>(obj.items().size()) : static_cast<int64_t>(obj.as_string().size());
    const int64_t step = bound(e.args[2]).value_or(1);
    if (step == 0) fail(e.offset, "slice step cannot be zero");
    auto clamp = [&](std::optional<int64_t> b, int64_t dflt) {
      if (!b) return dflt;
      int64_t v = *b < 0 ? *b + size : *b;
      return step > 0 ? std::clamp<int64_t>(v, 0, size) : std::clamp<int64_t>(v, -1, size - 1);
    };
    int64_t start = clamp(bound(e.args[0]), step > 0 ? 0 : size - 1);
    int64_t stop = clamp(bound(e.args[1]), step > 0 ? size : -1);
    Value::List items;
    std::string chars;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (obj.is_list())
        items.push_back(obj.items()[static_cast<size_t>(i)]);
      else
        chars += obj.as_string()[static_cast<size_t>(i)];
    }
    return obj.is_list() ? Value::list(std::move(items)) : Value::string(std::move(chars));
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    Value a = eval(*e.object);
    if (op == "and") return a.truthy() ? eval(*e.args[0]) : a;
    if (op == "or") return a.truthy() ? a : eval(*e.args[0]);
    Value b = eval(*e.args[0]);
    if (op == "==") return Value::boolean(a == b);
    if (op == "!=") return Value::boolean(!(a == b));
    if (op == "in" || op == "not in") {
      bool found = contains(e, b, a);
      return Value::boolean(op == "in" ? found : !found);
    }
    if (op == "~") return Value::string(a.str() + b.str());
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int cmp;
      if (a.is_number() && b.is_number())
        cmp = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
      else if (a.is_string() && b.is_string())
        cmp = a.as_string().compare(b.as_string());
      else
        fail(e.offset, "cannot compare " + kind_name(a) + " with " + kind_name(b));
      if (op == "<") return Value::boolean(cmp < 0);
      if (op == ">") return Value::boolean(cmp > 0);
      if (op == "<=") return Value::boolean(cmp <= 0);
      return Value::boolean(cmp >= 0);
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value::string(a.as_string() + b.as_string());
      if (a.is_list() && b.is_list()) {
        Value::List items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return Value::list(std::move(items));
      }
    }
    if (op == "*" && a.is_string() && b.kind() == Value::Kind::integer) {
      std::string s;
      for (int64_t i = 0; i < b.as_int(); ++i) s += a.as_string();
      return Value::string(std::move(s));
    }
    if (!a.is_number() || !b.is_number()) {
      fail(e.offset, "'" + op + "' cannot combine " + kind_name(a) + " with " + kind_name(b));
    }
    const bool ints = a.kind() == Value::Kind::integer && b.kind() == Value::Kind::integer;
    if (op == "+")
      return ints ? Value::integer(a.as_int() + b.as_int()) : Value::floating(a.as_double() + b.as_double());
    if (op == "-")
      return ints ? Value::integer(a.as_int() - b.as_int()) : Value::floating(a.as_double() - b.as_double());
    if (op == "*")
      return ints ? Value::integer(a.as_int() * b.as_int()) : Value::floating(a.as_double() * b.as_double());
    if (op == "**")
      return ints && b.as_int() >= 0 ? Value::integer(static_cast<int64_t>(std::pow(a.as_int(), b.as_int())))
                                     : Value::floating(std::pow(a.as_double(), b.as_double()));
    if (b.as_double() == 0) fail(e.offset, "division by zero");
    if (op == "/") return Value::floating(a.as_double() / b.as_double());
    if (op == "//") {
      if (ints) {
        int64_t q = a.as_int() / b.as_int();
        if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;  // floor, as Python
        return Value::integer(q);
      }
      return Value::floating(std::floor(a.as_double() / b.as_double()));
    }
    if (op == "%") {
      if (ints) {
        int64_t r = a.as_int() % b.as_int();
        if (r != 0 && ((r < 0) != (b.as_int() < 0))) r += b.as_int();  // sign of the divisor, as Python
        return Value::integer(r);
      }
      double r = std::fmod(a.as_double(), b.as_double());
      if (r != 0 && ((r < 0) != (b.as_double() < 0))) r += b.as_double();
      return Value::floating(r);
    }
    fail(e.offset, "unknown operator '" + op + "'");
  }

  bool contains(const Expr& e, const Value& container, const Value& item) {
    switch (container.kind()) {
      case Value::Kind::string:
        if (!item.is_string()) fail(e.offset, "'in <string>' needs a string on the left, not " + kind_name(item));
        return container.as_string().find(item.as_string()) != std::string::npos;
      case Value::Kind::list:
        return std::find(container.items().begin(), container.items().end(), item) != container.items().end();
      case Value::Kind::dict:
        return item.is_string() && container.contains_key(item.as_string());
      case Value::Kind::undefined:
        fail(e.offset, describe(*e.args[0]) + " is undefined, so 'in' is not possible");
      default:
        fail(e.offset, "'in' needs a string, list or dict on the right, not " + kind_name(container));
    }
  }

  // ------------------------------------------------------------ calls, filters, tests

  std::vector<Value> eval_args(const Expr& e) {
    std::vector<Value> args;
    for (const auto& a : e.args) args.push_back(eval(*a));
    return args;
  }
  Value kwarg(const Expr& e, const std::string& name, const std::vector<Value>& args, size_t position,
              Value dflt = Value()) {
    for (const auto& [k, v] : e.kwargs) {
      if (k == name) return eval(*v);
    }
    return position < args.size() ? args[position] : dflt;
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.object;
    if (callee.kind == Expr::Kind::name && !has_variable(callee.name)) {
      if (auto m = macros_.find(callee.name); m != macros_.end()) return call_macro(e, *m->second);
    }
    if (callee.kind == Expr::Kind::name && !has_variable(callee.name) && builtin_functions().count(callee.name)) {
      return call_builtin(e, callee.name);
    }
    if (callee.kind == Expr::Kind::attribute) {
      Value obj = eval(*callee.object);
      require_defined(obj, *callee.object, "calling '." + callee.name + "()'");
      if (!(obj.is_dict() && obj.contains_key(callee.name))) return call_method(e, obj, callee.name);
    }
    fail(e.offset, describe(callee) + " is not a function this template engine knows");
  }

  // A macro's output as a string; its parameters (positional, by keyword, else their defaults,
  // else undefined) in a frame of their own above the caller's.
  Value call_macro(const Expr& e, const Node& macro) {
    std::vector<Value> args = eval_args(e);
    if (args.size() > macro.params.size())
      fail(e.offset, "macro '" + macro.targets[0] + "' takes " + std::to_string(macro.params.size()) +
                         " argument(s), not " + std::to_string(args.size()));
    std::map<std::string, Value> frame;
    for (size_t i = 0; i < macro.params.size(); ++i) {
      const auto& param = macro.params[i];
      Value v = i < args.size() ? args[i] : Value();
      for (const auto& kw : e.kwargs)
        if (kw.first == param.first) v = eval(*kw.second);
      if (v.is_undefined() && i >= args.size() && param.second) v = eval(*param.second);
      frame[param.first] = std::move(v);
    }
    if (++macro_depth_ > 64) fail(e.offset, "macros nested deeper than 64 calls");
    frames_.push_back(std::move(frame));
    std::string saved = std::move(out_);
    out_.clear();
    render(macro.body);
    std::string text = std::move(out_);
    out_ = std::move(saved);
    frames_.pop_back();
    --macro_depth_;
    return Value::string(std::move(text));
  }

  Value call_builtin(const Expr& e, const std::string& name) {
    std::vector<Value> args = eval_args(e);
    if (name == "raise_exception") {
      throw TemplateError("chat template refused the conversation: " +
                          (args.empty() ? std::string("(no message)") : args[0].str()));
    }
    if (name == "namespace" || name == "dict") {
      Value::Dict entries;
      for (const auto& a : args) {
        if (a.is_dict()) entries.insert(entries.end(), a.entries().begin(), a.entries().end());
      }
      for (const auto& [k, v] : e.kwargs) entries.emplace_back(k, eval(*v));
      return name == "namespace" ? Value::namespace_(std::move(entries)) : Value::dict(std::move(entries));
    }
    if (name == "range") {
      for (const auto& a : args) {
        if (a.kind() != Value::Kind::integer) fail(e.offset, "range() needs integers");
      }
      int64_t start = 0, stop = 0, step = 1;
      if (args.size() == 1)
        stop = args[0].as_int();
      else if (args.size() >= 2) {
        start = args[0].as_int();
        stop = args[1].as_int();
        if (args.size() == 3) step = args[2].as_int();
      }
      if (step == 0) fail(e.offset, "range() step cannot be zero");
      Value::List items;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.push_back(Value::integer(i));
      return Value::list(std::move(items));
    }
    // strftime_now(format): the local date, as transformers provides it to templates.
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[128];
    std::string format = args.empty() ? "%Y-%m-%d" : args[0].str();
    size_t n = std::strftime(buf, sizeof buf, format.c_str(), &local);
    return Value::string(std::string(buf, n));
  }

  Value call_method(const Expr& e, const Value& obj, const std::string& method) {
    std::vector<Value> args = eval_args(e);
    if (obj.is_string()) {
      const std::string& s = obj.as_string();
      auto chars_arg = [&]() -> const std::string* {
        return !args.empty() && args[0].is_string() ? &args[0].as_string() : nullptr;
      };
      if (method == "strip") return Value::string(strip(s, true, true, chars_arg()));
      if (method == "lstrip") return Value::string(strip(s, true, false, chars_arg()));
      if (method == "rstrip") return Value::string(strip(s, false, true, chars_arg()));
      if (method == "upper") return Value::string(to_case(s, true));
      if (method == "lower") return Value::string(to_case(s, false));
      if (method == "title") return Value::string(title(s));
      if (method == "capitalize")
        return Value::string(s.empty() ? s : to_case(s.substr(0, 1), true) + to_case(s.substr(1), false));
      if ((method == "startswith" || method == "endswith") && !args.empty() && args[0].is_string()) {
        const std::string& x = args[0].as_string();
        bool r = method == "startswith" ? s.rfind(x, 0) == 0
                                        : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
        return Value::boolean(r);
      }
      if (method == "replace" && args.size() >= 2) return Value::string(replace_all(s, args[0].str(), args[1].str()));
      if (method == "split")
        return Value::list(split(s, args.empty() || args[0].is_none() ? nullptr : &args[0].as_string()));
    }
    if (obj.is_list()) {  // lists are shared by reference, so these change the caller's list
      Value::List& items = obj.items();
      if (method == "append" && args.size() == 1) {
        items.push_back(args[0]);
        return Value::none();
      }
      if (method == "pop" && args.size() <= 1) {
        if (args.size() == 1 && args[0].kind() != Value::Kind::integer) fail(e.offset, "pop() needs an integer");
        int64_t i = args.empty() ? -1 : args[0].as_int();
        const int64_t n = static_cast<int64_t>(items.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) fail(e.offset, "pop index out of range");
        Value v = items[static_cast<size_t>(i)];
        items.erase(items.begin() + i);
        return v;
      }
    }
    if (obj.is_dict()) {
      if (method == "items") {
        Value::List items;
        for (const auto& [k, v] : obj.entries()) items.push_back(Value::list({Value::string(k), v}));
        return Value::list(std::move(items));
      }
      if (method == "keys" || method == "values") {
        Value::List items;
        for (const auto& [k, v] : obj.entries()) items.push_back(method == "keys" ? Value::string(k) : v);
        return Value::list(std::move(items));
      }
      if (method == "get" && !args.empty()) {
        Value v = obj.get(args[0].str());
        return v.is_undefined() ? (args.size() > 1 ? args[1] : Value::none()) : v;
      }
    }
    fail(e.offset, kind_name(obj) + " has no method '" + method + "' in this template engine");
  }

  static Value::List split(const std::string& s, const std::string* sep) {
    Value::List parts;
    if (!sep) {  // Python's split(): runs of whitespace, no empty parts
      size_t i = 0;
      while (i < s.size()) {
        while (i < s.size() && is_space(s[i])) ++i;
        size_t start = i;
        while (i < s.size() && !is_space(s[i])) ++i;
        if (i > start) parts.push_back(Value::string(s.substr(start, i - start)));
      }
      return parts;
    }
    if (sep->empty()) return {Value::string(s)};
    size_t start = 0, pos;
    while ((pos = s.find(*sep, start)) != std::string::npos) {
      parts.push_back(Value::string(s.substr(start, pos - start)));
      start = pos + sep->size();
    }
    parts.push_back(Value::string(s.substr(start)));
    return parts;
  }

  Value filter(const Expr& e) {
    Value in = eval(*e.object);
    std::vector<Value> args = eval_args(e);
    const std::string& f = e.name;
    if (f == "default" || f == "d") {
      bool boolean = kwarg(e, "boolean", args, 1, Value::boolean(false)).truthy();
      bool use_default = boolean ? !in.truthy() : in.is_undefined();
      return use_default ? kwarg(e, "default_value", args, 0, Value::string("")) : in;
    }
    if (f == "tojson") {
      Value indent = kwarg(e, "indent", args, 0);
      return Value::string(in.to_json(indent.kind() == Value::Kind::integer ? static_cast<int>(indent.as_int()) : -1));
    }
    if (f == "string") return Value::string(in.str());
    if (f == "safe" || f == "e" || f == "escape") return in;  // no HTML autoescaping in chat templates
    if (in.is_undefined()) {                                  // Jinja's Undefined has length 0 and prints as ""
      if (f == "length" || f == "count") return Value::integer(0);
      in = Value::string("");
    }
    if (f == "length" || f == "count") {
      if (in.is_string()) return Value::integer(static_cast<int64_t>(in.as_string().size()));
      if (in.is_list()) return Value::integer(static_cast<int64_t>(in.items().size()));
      if (in.is_dict()) return Value::integer(static_cast<int64_t>(in.entries().size()));
    }
    if (in.is_string()) {
      const std::string& s = in.as_string();
      if (f == "trim")
        return Value::string(
            strip(s, true, true, !args.empty() && args[0].is_string() ? &args[0].as_string() : nullptr));
      if (f == "upper") return Value::string(to_case(s, true));
      if (f == "lower") return Value::string(to_case(s, false));
      if (f == "title") return Value::string(title(s));
      if (f == "capitalize")
        return Value::string(s.empty() ? s : to_case(s.substr(0, 1), true) + to_case(s.substr(1), false));
      if (f == "replace" && args.size() >= 2) return Value::string(replace_all(s, args[0].str(), args[1].str()));
      if (f == "int") {
        try {
          return Value::integer(std::stoll(s));
        } catch (const std::exception&) {
          return Value::integer(0);
        }
      }
      if (f == "list") return Value::list(split_chars(s));
    }
    if (f == "int" && in.is_number())
      return Value::integer(in.kind() == Value::Kind::integer ? in.as_int() : static_cast<int64_t>(in.as_double()));
    if (f == "abs" && in.is_number())
      return in.kind() == Value::Kind::integer ? Value::integer(std::abs(in.as_int()))
                                               : Value::floating(std::fabs(in.as_double()));
    if (in.is_dict() && (f == "items" || f == "list")) {
      Value::List items;
      for (const auto& [k, v] : in.entries())
        items.push_back(f == "items" ? Value::list({Value::string(k), v}) : Value::string(k));
      return Value::list(std::move(items));
    }
    if (in.is_list()) {
      const auto& items = in.items();
      if (f == "list") return Value::list(items);
      if (f == "first") return items.empty() ? Value() : items.front();
      if (f == "last") return items.empty() ? Value() : items.back();
      if (f == "reverse") return Value::list(Value::List(items.rbegin(), items.rend()));
      if (f == "join") {
        std::string sep = kwarg(e, "d", args, 0, Value::string("")).str();
        std::string s;
        for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i].str();
        return Value::string(std::move(s));
      }
      if (f == "selectattr" || f == "rejectattr" || f == "select" || f == "reject") return select(e, items, args);
      if (f == "map") {
        Value attribute = kwarg(e, "attribute", {}, 0);
        if (!attribute.is_string()) fail(e.offset, "map() is supported only as map(attribute='name')");
        Value::List out;
        for (const auto& item : items) out.push_back(item.get(attribute.as_string()));
        return Value::list(std::move(out));
      }
    }
    fail(e.offset, "the filter '" + f + "' does not apply to " + kind_name(in) + " in this template engine");
  }

  static Value::List split_chars(const std::string& s) {
    Value::List out;
    for (char c : s) out.push_back(Value::string(std::string(1, c)));
    return out;
  }

  // selectattr("role", "equalto", "user"), rejectattr("x", "defined"), select("string") ...
  Value select(const Expr& e, const Value::List& items, const std::vector<Value>& args) {
    const bool by_attribute = e.name == "selectattr" || e.name == "rejectattr";
    const bool keep_matching = e.name == "selectattr" || e.name == "select";
    size_t i = 0;
    std::string attribute;
    if (by_attribute) {
      if (args.empty() || !args[0].is_string()) fail(e.offset, e.name + "() needs an attribute name");
      attribute = args[i++].as_string();
    }
    std::string test_name = i < args.size() ? args[i++].str() : "";
    std::vector<Value> test_args(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())), args.end());
    Value::List out;
    for (const auto& item : items) {
      Value subject = by_attribute ? item.get(attribute) : item;
      bool match = test_name.empty() ? subject.truthy() : apply_test(e, test_name, subject, test_args);
      if (match == keep_matching) out.push_back(item);
    }
    return Value::list(std::move(out));
  }

  bool test(const Expr& e) {
    if (e.name == "defined" || e.name == "undefined") {
      bool defined;
      if (e.object->kind == Expr::Kind::name) {
        defined = has_variable(e.object->name) ? !lookup(e.object->name).is_undefined()
                                               : builtin_functions().count(e.object->name) > 0;
      } else {
        defined = !eval(*e.object).is_undefined();
      }
      return e.name == "defined" ? defined : !defined;
    }
    return apply_test(e, e.name, eval(*e.object), eval_args(e));
  }

  bool apply_test(const Expr& e, const std::string& name, const Value& v, const std::vector<Value>& args) {
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_number();
    if (name == "integer") return v.kind() == Value::Kind::integer;
    if (name == "float") return v.kind() == Value::Kind::floating;
    if (name == "boolean") return v.kind() == Value::Kind::boolean;
    if (name == "true") return v.kind() == Value::Kind::boolean && v.as_bool();
    if (name == "false") return v.kind() == Value::Kind::boolean && !v.as_bool();
    if (name == "mapping") return v.is_dict();
    if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string();
    if (name == "sequence") return v.is_list() || v.is_string() || v.is_dict();
    if (name == "callable") return false;
    if (name == "odd" || name == "even") {
      if (v.kind() != Value::Kind::integer) fail(e.offset, "'" + name + "' needs an integer");
      return (v.as_int() % 2 != 0) == (name == "odd");
    }
    if (name == "lower") return v.is_string() && to_case(v.as_string(), false) == v.as_string();
    if (name == "upper") return v.is_string() && to_case(v.as_string(), true) == v.as_string();
    if (args.empty()) fail(e.offset, "unknown test '" + name + "'");
    const Value& x = args[0];
    if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return v == x;
    if (name == "ne" || name == "!=") return !(v == x);
    if (name == "in") return contains(e, x, v);
    if (name == "divisibleby" && v.kind() == Value::Kind::integer && x.kind() == Value::Kind::integer &&
        x.as_int() != 0) {
      return v.as_int() % x.as_int() == 0;
    }
    fail(e.offset, "unknown test '" + name + "'");
  }

  const std::string& src_;
  std::vector<std::map<std::string, Value>> frames_;
  std::map<std::string, const Node*> macros_;  // defined so far, by name
  int macro_depth_ = 0;
  std::string out_;
};

}  // namespace

JinjaTemplate::JinjaTemplate(std::string source)
    : source_(std::move(source)), body_(std::make_unique<ast::Body>(parse_template(source_))) {}
JinjaTemplate::~JinjaTemplate() = default;
JinjaTemplate::JinjaTemplate(JinjaTemplate&&) noexcept = default;
JinjaTemplate& JinjaTemplate::operator=(JinjaTemplate&&) noexcept = default;

std::string JinjaTemplate::render(const Value& context) const { return Renderer(source_, context).run(*body_); }

}  // namespace clusterctl::chat
