#pragma once
// The walker of a parsed template, shared by the files that implement it:
// jinja_render.cpp (statements), jinja_render_expressions.cpp (expressions, calls, macros)
// and jinja_render_filters.cpp (methods, filters, tests). Python/Jinja semantics:
// truthiness, scoping of loop variables, Undefined that prints as "" but fails when used
// as an object.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "worker/chat/jinja_ast.h"
#include "worker/chat/jinja_template.h"

namespace clusterctl::chat::detail {

enum class Flow { normal, break_, continue_ };

// The functions a template may call without defining them (raise_exception, range ...).
const std::set<std::string>& builtin_functions();

// "a string", "an integer" ...: the value's type as messages name it.
std::string kind_name(const Value& v);

class Renderer {
 public:
  Renderer(const std::string& src, const Value& context);
  std::string run(const ast::Body& body);

 private:
  [[noreturn]] void fail(size_t offset, const std::string& what) const;

  // statements: jinja_render.cpp
  Flow render(const ast::Body& body);
  Flow render(const ast::Node& n);
  Flow render_for(const ast::Node& n);
  void bind_targets(const ast::Node& n, const Value& item);

  // expressions and calls: jinja_render_expressions.cpp
  bool has_variable(const std::string& name) const;
  Value lookup(const std::string& name) const;
  void require_defined(const Value& v, const ast::Expr& e, const std::string& use) const;
  std::string describe(const ast::Expr& e) const;
  Value eval(const ast::Expr& e);
  Value index(const ast::Expr& e, const Value& obj, const Value& key);
  Value slice(const ast::Expr& e);
  Value binary(const ast::Expr& e);
  bool contains(const ast::Expr& e, const Value& container, const Value& item);
  std::vector<Value> eval_args(const ast::Expr& e);
  Value kwarg(const ast::Expr& e, const std::string& name, const std::vector<Value>& args, size_t position,
              Value dflt = Value());
  Value call(const ast::Expr& e);
  Value call_macro(const ast::Expr& e, const ast::Node& macro);
  Value call_builtin(const ast::Expr& e, const std::string& name);

  // methods, filters and tests: jinja_render_filters.cpp
  Value call_method(const ast::Expr& e, const Value& obj, const std::string& method);
  Value filter(const ast::Expr& e);
  Value select(const ast::Expr& e, const Value::List& items, const std::vector<Value>& args);
  bool test(const ast::Expr& e);
  bool apply_test(const ast::Expr& e, const std::string& name, const Value& v, const std::vector<Value>& args);

  const std::string& src_;
  std::vector<std::map<std::string, Value>> frames_;
  std::map<std::string, const ast::Node*> macros_;  // defined so far, by name
  int macro_depth_ = 0;
  std::string out_;
};

}  // namespace clusterctl::chat::detail
