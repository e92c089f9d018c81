#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

namespace clusterctl::chat {

// A value of the Jinja subset used by chat templates: Python-like dynamic typing.
// Lists and dicts are shared by reference (as in Python), which is what lets
// `{% set ns.found = true %}` inside a loop change a namespace made outside it.
class Value {
 public:
  enum class Kind { undefined, none, boolean, integer, floating, string, list, dict };
  using List = std::vector<Value>;
  using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, like Python's dict

  Value() = default;  // undefined
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(List items = {});
  static Value dict(Dict items = {});
  // A namespace() object: a dict whose attributes may be assigned by `set`.
  static Value namespace_(Dict items = {});
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_number() const { return kind_ == Kind::integer || kind_ == Kind::floating; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_namespace() const { return kind_ == Kind::dict && is_namespace_; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  double as_double() const { return kind_ == Kind::integer ? static_cast<double>(int_) : double_; }
  const std::string& as_string() const { return string_; }
  List& items() const { return *list_; }
  Dict& entries() const { return *dict_; }

  bool truthy() const;
  // Dict lookup by key; undefined when absent (or when this is not a dict).
  Value get(const std::string& key) const;
  void set(const std::string& key, Value v) const;  // dicts only
  bool contains_key(const std::string& key) const;

  // Text as `{{ value }}` prints it (Python str(): None, True, ['a'], {'k': 'v'}).
  std::string str() const;
  // JSON as transformers' `tojson` filter writes it (json.dumps, ensure_ascii=False).
  std::string to_json(int indent = -1) const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  Kind kind_ = Kind::undefined;
  bool bool_ = false;
  bool is_namespace_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
};

}  // namespace clusterctl::chat
