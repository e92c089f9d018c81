// Evaluating expressions: names, literals, indexing and slicing, operators with Python's
// semantics, and calls (macros, the built-in functions).
#include <algorithm>
#include <cmath>
#include <ctime>
#include <optional>

#include "worker/chat/jinja_renderer.h"

namespace clusterctl::chat::detail {

using ast::Expr;
using ast::Node;

const std::set<std::string>& builtin_functions() {
  static const std::set<std::string> kFunctions = {"raise_exception", "namespace", "range", "strftime_now", "dict"};
  return kFunctions;
}

bool Renderer::has_variable(const std::string& name) const {
  for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
    if (it->count(name)) return true;
  }
  return false;
}

Value Renderer::lookup(const std::string& name) const {
  for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
    auto found = it->find(name);
    if (found != it->end()) return found->second;
  }
  return Value();
}

void Renderer::require_defined(const Value& v, const Expr& e, const std::string& use) const {
  if (v.is_undefined()) fail(e.offset, describe(e) + " is undefined, so " + use + " is not possible");
}

std::string Renderer::describe(const Expr& e) const {
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

Value Renderer::eval(const Expr& e) {
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

Value Renderer::index(const Expr& e, const Value& obj, const Value& key) {
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

Value Renderer::slice(const Expr& e) {
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

Value Renderer::binary(const Expr& e) {
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
  if (op == "+") return ints ? Value::integer(a.as_int() + b.as_int()) : Value::floating(a.as_double() + b.as_double());
  if (op == "-") return ints ? Value::integer(a.as_int() - b.as_int()) : Value::floating(a.as_double() - b.as_double());
  if (op == "*") return ints ? Value::integer(a.as_int() * b.as_int()) : Value::floating(a.as_double() * b.as_double());
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

bool Renderer::contains(const Expr& e, const Value& container, const Value& item) {
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

// ------------------------------------------------------------ calls

std::vector<Value> Renderer::eval_args(const Expr& e) {
  std::vector<Value> args;
  for (const auto& a : e.args) args.push_back(eval(*a));
  return args;
}
Value Renderer::kwarg(const Expr& e, const std::string& name, const std::vector<Value>& args, size_t position,
                      Value dflt) {
  for (const auto& [k, v] : e.kwargs) {
    if (k == name) return eval(*v);
  }
  return position < args.size() ? args[position] : dflt;
}

Value Renderer::call(const Expr& e) {
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
Value Renderer::call_macro(const Expr& e, const Node& macro) {
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

Value Renderer::call_builtin(const Expr& e, const std::string& name) {
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
}  // namespace clusterctl::chat::detail
