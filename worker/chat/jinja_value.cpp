#include "worker/chat/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace clusterctl::chat {

Value Value::none() {
  Value v;
  v.kind_ = Kind::none;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::boolean;
  v.bool_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::integer;
  v.int_ = i;
  return v;
}
Value Value::floating(double d) {
  Value v;
  v.kind_ = Kind::floating;
  v.double_ = d;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::string;
  v.string_ = std::move(s);
  return v;
}
Value Value::list(List items) {
  Value v;
  v.kind_ = Kind::list;
  v.list_ = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::dict(Dict items) {
  Value v;
  v.kind_ = Kind::dict;
  v.dict_ = std::make_shared<Dict>(std::move(items));
  return v;
}
Value Value::namespace_(Dict items) {
  Value v = dict(std::move(items));
  v.is_namespace_ = true;
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none();
    case nlohmann::ordered_json::value_t::boolean:
      return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return integer(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float:
      return floating(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& e : j) items.push_back(from_json(e));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict items;
      for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(it.key(), from_json(it.value()));
      return dict(std::move(items));
    }
    default:
      return Value();
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::undefined:
    case Kind::none:
      return false;
    case Kind::boolean:
      return bool_;
    case Kind::integer:
      return int_ != 0;
    case Kind::floating:
      return double_ != 0.0;
    case Kind::string:
      return !string_.empty();
    case Kind::list:
      return !list_->empty();
    case Kind::dict:
      return is_namespace_ || !dict_->empty();
  }
  return false;
}

Value Value::get(const std::string& key) const {
  if (kind_ != Kind::dict) return Value();
  for (const auto& [k, v] : *dict_) {
    if (k == key) return v;
  }
  return Value();
}

void Value::set(const std::string& key, Value v) const {
  for (auto& [k, existing] : *dict_) {
    if (k == key) {
      existing = std::move(v);
      return;
    }
  }
  dict_->emplace_back(key, std::move(v));
}

bool Value::contains_key(const std::string& key) const {
  if (kind_ != Kind::dict) return false;
  for (const auto& entry : *dict_) {
    if (entry.first == key) return true;
  }
  return false;
}

namespace {

std::string format_double(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";  // Python prints 1.0, not 1
  return s;
}

std::string python_repr_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    switch (c) {
      case '\'':
        out += "\\'";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out + "'";
}

std::string repr(const Value& v) { return v.is_string() ? python_repr_string(v.as_string()) : v.str(); }

void json_escape(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// "[...]" or "{...}" of `n` elements, each written by write_element(i), in Python's json.dumps
// layout: ", " between elements without indent; "," + newline + indentation with it. Empty: "[]".
template <typename WriteElement>
void write_json_container(char open, char close, size_t n, int indent, int depth, std::string& out,
                          WriteElement write_element) {
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  out += open;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += indent >= 0 ? "," : ", ";
    if (indent >= 0) newline(depth + 1);
    write_element(i);
  }
  if (n > 0 && indent >= 0) newline(depth);
  out += close;
}

// JSON as json.dumps writes it: keys and values separated by ": ".
void write_json(const Value& v, int indent, int depth, std::string& out) {
  switch (v.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none:
      out += "null";
      return;
    case Value::Kind::boolean:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::integer:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::floating:
      out += format_double(v.as_double());
      return;
    case Value::Kind::string:
      json_escape(v.as_string(), out);
      return;
    case Value::Kind::list: {
      const Value::List& items = v.items();
      write_json_container('[', ']', items.size(), indent, depth, out,
                           [&](size_t i) { write_json(items[i], indent, depth + 1, out); });
      return;
    }
    case Value::Kind::dict: {
      const Value::Dict& entries = v.entries();
      write_json_container('{', '}', entries.size(), indent, depth, out, [&](size_t i) {
        json_escape(entries[i].first, out);
        out += ": ";
        write_json(entries[i].second, indent, depth + 1, out);
      });
      return;
    }
  }
}

}  // namespace

std::string Value::str() const {
  switch (kind_) {
    case Kind::undefined:
      return "";
    case Kind::none:
      return "None";
    case Kind::boolean:
      return bool_ ? "True" : "False";
    case Kind::integer:
      return std::to_string(int_);
    case Kind::floating:
      return format_double(double_);
    case Kind::string:
      return string_;
    case Kind::list: {
      std::string out = "[";
      for (size_t i = 0; i < list_->size(); ++i) out += (i ? ", " : "") + repr((*list_)[i]);
      return out + "]";
    }
    case Kind::dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : *dict_) {
        out += (first ? "" : ", ") + python_repr_string(k) + ": " + repr(v);
        first = false;
      }
      return out + "}";
    }
  }
  return "";
}

std::string Value::to_json(int indent) const {
  std::string out;
  write_json(*this, indent, 0, out);
  return out;
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind_ == Value::Kind::integer && b.kind_ == Value::Kind::integer) return a.int_ == b.int_;
    return a.as_double() == b.as_double();
  }
  if (a.kind_ == Value::Kind::boolean && b.is_number()) return (a.bool_ ? 1.0 : 0.0) == b.as_double();
  if (b.kind_ == Value::Kind::boolean && a.is_number()) return (b.bool_ ? 1.0 : 0.0) == a.as_double();
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::undefined:
    case Value::Kind::none:
      return true;
    case Value::Kind::boolean:
      return a.bool_ == b.bool_;
    case Value::Kind::string:
      return a.string_ == b.string_;
    case Value::Kind::list:
      return *a.list_ == *b.list_;
    case Value::Kind::dict: {
      if (a.dict_ == b.dict_) return true;
      if (a.dict_->size() != b.dict_->size()) return false;
      for (const auto& [k, v] : *a.dict_) {
        if (!b.contains_key(k) || !(b.get(k) == v)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace clusterctl::chat
