// Methods of strings, lists and dicts (s.strip(), xs.append(x), d.items() ...), filters
// (`| tojson`, `| selectattr(...)` ...) and tests (`is defined`, `is string` ...).
#include <algorithm>
#include <cctype>
#include <cmath>

#include "worker/chat/jinja_renderer.h"

namespace clusterctl::chat::detail {

namespace {

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

Value::List split(const std::string& s, const std::string* sep) {
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

Value::List split_chars(const std::string& s) {
  Value::List out;
  for (char c : s) out.push_back(Value::string(std::string(1, c)));
  return out;
}
}  // namespace

using ast::Expr;

Value Renderer::call_method(const Expr& e, const Value& obj, const std::string& method) {
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

Value Renderer::filter(const Expr& e) {
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
      return Value::string(strip(s, true, true, !args.empty() && args[0].is_string() ? &args[0].as_string() : nullptr));
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

// selectattr("role", "equalto", "user"), rejectattr("x", "defined"), select("string") ...
Value Renderer::select(const Expr& e, const Value::List& items, const std::vector<Value>& args) {
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

bool Renderer::test(const Expr& e) {
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

bool Renderer::apply_test(const Expr& e, const std::string& name, const Value& v, const std::vector<Value>& args) {
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

}  // namespace clusterctl::chat::detail
