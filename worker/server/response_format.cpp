#include "worker/server/response_format.h"

#include <algorithm>

#include "worker/server/request_fields.h"

namespace clusterctl::server {

namespace {

using sampling::JsonSchema;
using Node = sampling::JsonSchemaNode;

[[noreturn]] void bad_schema(const std::string& param, const std::string& message) {
  throw invalid_request("'" + param + "': " + message, param, "invalid_schema");
}

uint8_t type_bit(const std::string& name) {
  if (name == "object") return Node::kObject;
  if (name == "array") return Node::kArray;
  if (name == "string") return Node::kString;
  if (name == "number") return Node::kNumber;
  if (name == "integer") return Node::kInteger;
  if (name == "boolean") return Node::kBoolean;
  if (name == "null") return Node::kNull;
  return 0;
}

// The JSON type bit of a value (integers are also numbers).
uint8_t type_of(const Json& v) {
  if (v.is_object()) return Node::kObject;
  if (v.is_array()) return Node::kArray;
  if (v.is_string()) return Node::kString;
  if (v.is_number_integer() || v.is_number_unsigned() ||
      (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()))))
    return Node::kInteger | Node::kNumber;
  if (v.is_number()) return Node::kNumber;
  if (v.is_boolean()) return Node::kBoolean;
  return Node::kNull;
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(std::string param) : param_(std::move(param)) {}
  std::shared_ptr<const JsonSchema> run(const Json& schema) {
    compile(schema, "", 0);
    return std::make_shared<const JsonSchema>(std::move(out_));
  }

 private:
  std::string where(const std::string& path) const { return path.empty() ? param_ : param_ + path; }

  int64_t count_of(const Json& v, const std::string& path) {
    return integer_in(v, where(path), 0, kMaxSchemaCount,
                      "an integer between 0 and " + std::to_string(kMaxSchemaCount));
  }

  int compile(const Json& s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth)
      bad_schema(where(path), "the schema nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    if (out_.nodes.size() >= kMaxSchemaNodes)
      bad_schema(param_, "the schema has more than " + std::to_string(kMaxSchemaNodes) + " subschemas");
    const int index = static_cast<int>(out_.nodes.size());
    out_.nodes.emplace_back();
    if (s.is_boolean()) {
      if (!s.get<bool>()) bad_schema(where(path), "the schema false (nothing matches) is not supported");
      return index;
    }
    if (!s.is_object()) wrong_type(where(path), "a JSON Schema object");
    Node node;
    static const char* const kNotes[] = {"title", "description", "default", "examples", "$schema", "$id", "$comment"};
    static const char* const kKeywords[] = {"type",     "properties", "required",  "additionalProperties",
                                            "items",    "enum",       "const",     "anyOf",
                                            "minItems", "maxItems",   "minLength", "maxLength"};
    bool object_keywords = false, array_keywords = false, string_keywords = false;
    for (const auto& [key, value] : s.items()) {
      if (std::find(std::begin(kNotes), std::end(kNotes), key) != std::end(kNotes)) continue;
      if (std::find(std::begin(kKeywords), std::end(kKeywords), key) == std::end(kKeywords)) {
        throw invalid_request("'" + where(path) + "': the JSON Schema keyword '" + key.substr(0, 64) +
                                  "' is not supported (supported: type, properties, required, additionalProperties, "
                                  "items, enum, const, anyOf, minItems, maxItems, minLength, maxLength)",
                              where(path + "." + key.substr(0, 64)), "unsupported_schema");
      }
      if (key == "properties" || key == "required" || key == "additionalProperties") object_keywords = true;
      if (key == "items" || key == "minItems" || key == "maxItems") array_keywords = true;
      if (key == "minLength" || key == "maxLength") string_keywords = true;
    }
    if (s.contains("anyOf")) {
      for (const auto& [key, value] : s.items()) {
        if (key != "anyOf" && std::find(std::begin(kNotes), std::end(kNotes), key) == std::end(kNotes))
          bad_schema(where(path),
                     "'anyOf' beside '" + key + "' is not supported; move '" + key + "' into each alternative");
      }
      const Json& alts = s["anyOf"];
      if (!alts.is_array() || alts.empty() || alts.size() > kMaxAnyOf)
        wrong_type(where(path + ".anyOf"), "an array of 1 to " + std::to_string(kMaxAnyOf) + " schemas");
      for (size_t i = 0; i < alts.size(); ++i)
        node.any_of.push_back(compile(alts[i], path + ".anyOf[" + std::to_string(i) + "]", depth + 1));
      out_.nodes[index] = std::move(node);
      return index;
    }
    if (auto t = s.find("type"); t != s.end()) {
      node.types = 0;
      const Json names = t->is_array() ? *t : Json::array({*t});
      if (names.empty()) wrong_type(where(path + ".type"), "a type name or a non-empty array of them");
      for (const auto& name : names) {
        const uint8_t bit = name.is_string() ? type_bit(name.get<std::string>()) : 0;
        if (bit == 0)
          wrong_type(where(path + ".type"),
                     "one of object, array, string, number, integer, boolean, null (or an array of them)");
        node.types |= bit;
      }
      if (node.types & Node::kNumber) node.types |= Node::kInteger;
    } else if (object_keywords + array_keywords + string_keywords == 1) {
      // No type: the keywords say which one is meant (an answer of that type satisfies the schema).
      node.types = object_keywords ? Node::kObject : array_keywords ? Node::kArray : Node::kString;
    }
    if (auto p = s.find("properties"); p != s.end()) {
      if (!p->is_object()) wrong_type(where(path + ".properties"), "an object of schemas");
      for (const auto& [name, sub] : p->items()) add_property(node, name, sub, path, depth);
    }
    if (auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) wrong_type(where(path + ".required"), "an array of property names");
      for (const auto& name : *r) {
        if (!name.is_string()) wrong_type(where(path + ".required"), "an array of property names");
        const std::string& n = name.get_ref<const std::string&>();
        auto at = std::find(node.property_names.begin(), node.property_names.end(), n);
        if (at == node.property_names.end()) {
          add_property(node, n, Json(true), path, depth);  // required but undescribed: any value
          at = node.property_names.end() - 1;
        }
        node.required |= uint64_t{1} << (at - node.property_names.begin());
      }
    }
    if (auto a = s.find("additionalProperties"); a != s.end()) {
      if (a->is_boolean()) {
        node.additional_allowed = a->get<bool>();
      } else {
        node.additional_node = compile(*a, path + ".additionalProperties", depth + 1);
      }
    }
    if (auto i = s.find("items"); i != s.end()) {
      if (i->is_array())
        bad_schema(where(path + ".items"), "an array of schemas (tuples) is not supported; give one schema");
      node.items_node = compile(*i, path + ".items", depth + 1);
    }
    if (auto v = s.find("minItems"); v != s.end()) node.min_items = static_cast<int>(count_of(*v, path + ".minItems"));
    if (auto v = s.find("maxItems"); v != s.end()) node.max_items = static_cast<int>(count_of(*v, path + ".maxItems"));
    if (auto v = s.find("minLength"); v != s.end())
      node.min_length = static_cast<int>(count_of(*v, path + ".minLength"));
    if (auto v = s.find("maxLength"); v != s.end())
      node.max_length = static_cast<int>(count_of(*v, path + ".maxLength"));
    if (node.max_items >= 0 && node.min_items > node.max_items)
      bad_schema(where(path), "minItems is larger than maxItems: no array matches");
    if (node.max_length >= 0 && node.min_length > node.max_length)
      bad_schema(where(path), "minLength is larger than maxLength: no string matches");
    if (s.contains("enum") || s.contains("const")) {
      const bool is_enum = s.contains("enum");
      const Json values = is_enum ? s["enum"] : Json::array({s["const"]});
      const std::string p = path + (is_enum ? ".enum" : ".const");
      if (!values.is_array() || values.empty() || values.size() > JsonSchema::kMaxLiterals)
        wrong_type(where(p), "an array of 1 to " + std::to_string(JsonSchema::kMaxLiterals) + " values");
      for (const auto& v : values) {
        if (!(type_of(v) & node.types)) continue;  // a value the type excludes can never match
        std::string text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
        if (text.size() > kMaxLiteralBytes)
          bad_schema(where(p), "a value is longer than " + std::to_string(kMaxLiteralBytes) + " bytes as JSON");
        node.literals.push_back(std::move(text));
      }
      if (node.literals.empty()) bad_schema(where(p), "no value is of the schema's type: nothing matches");
    }
    if (node.types == 0) bad_schema(where(path), "no type is allowed");
    out_.nodes[index] = std::move(node);
    return index;
  }

  void add_property(Node& node, const std::string& name, const Json& sub, const std::string& path, int depth) {
    if (node.property_names.size() >= JsonSchema::kMaxProperties)
      bad_schema(where(path + ".properties"),
                 "more than " + std::to_string(JsonSchema::kMaxProperties) + " properties");
    for (unsigned char c : name) {
      if (c == '"' || c == '\\' || c < 0x20)
        bad_schema(where(path + ".properties"),
                   "property names with quotes, backslashes or control characters are not supported");
    }
    if (std::find(node.property_names.begin(), node.property_names.end(), name) != node.property_names.end()) return;
    node.property_names.push_back(name);
    node.property_nodes.push_back(-1);
    const int child = compile(sub, path + ".properties." + name.substr(0, 64), depth + 1);
    node.property_nodes.back() = child;
  }

  std::string param_;
  JsonSchema out_;
};

}  // namespace

std::shared_ptr<const sampling::JsonSchema> compile_json_schema(const Json& schema, const std::string& param) {
  return SchemaCompiler(param).run(schema);
}

void parse_response_format(const Json& value, SamplingParams& sampling) {
  const std::string shape = "an object such as {\"type\": \"json_object\"}";
  if (!value.is_object()) wrong_type("response_format", shape);
  const Json* type = field(value, "type");
  if (!type || !type->is_string()) wrong_type("response_format.type", "\"text\", \"json_object\" or \"json_schema\"");
  const std::string& t = type->get_ref<const std::string&>();
  auto only = [&](const Json& object, const std::string& param, std::initializer_list<const char*> keys) {
    for (const auto& item : object.items()) {
      const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture those
      if (std::find_if(keys.begin(), keys.end(), [&](const char* k) { return key == k; }) == keys.end())
        throw invalid_request("'" + param + "." + key.substr(0, 64) + "' is not supported",
                              param + "." + key.substr(0, 64), "invalid_value");
    }
  };
  if (t == "text") {
    only(value, "response_format", {"type"});
    return;
  }
  if (t == "json_object") {
    // llama-server's form may carry a schema.
    only(value, "response_format", {"type", "schema"});
    sampling.constrain_json = true;
    if (const Json* schema = field(value, "schema"))
      sampling.json_schema = compile_json_schema(*schema, "response_format.schema");
    return;
  }
  if (t != "json_schema") {
    throw invalid_request(
        "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got '" + t.substr(0, 64) + "'",
        "response_format.type", "invalid_value");
  }
  only(value, "response_format", {"type", "json_schema"});
  const Json* js = field(value, "json_schema");
  if (!js) {
    throw invalid_request("'response_format.json_schema' is missing: {\"name\": ..., \"schema\": {...}}",
                          "response_format.json_schema", "missing_required_parameter");
  }
  if (!js->is_object()) wrong_type("response_format.json_schema", "an object {\"name\", \"schema\", \"strict\"}");
  only(*js, "response_format.json_schema", {"name", "description", "schema", "strict"});
  if (const Json* name = field(*js, "name"); name && !name->is_string())
    wrong_type("response_format.json_schema.name", "a string");
  if (const Json* strict = field(*js, "strict"); strict && !strict->is_boolean())
    wrong_type("response_format.json_schema.strict", "a boolean");
  sampling.constrain_json = true;
  const Json* schema = field(*js, "schema");
  // No schema: any JSON value (OpenAI's default schema is the empty one).
  sampling.json_schema = compile_json_schema(schema ? *schema : Json::object(), "response_format.json_schema.schema");
}

}  // namespace clusterctl::server
