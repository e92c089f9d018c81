#include "worker/server/request_fields.h"

#include <cmath>

namespace clusterctl::server {

Json parse_request_body(const std::string& text) {
  check_json_shape(text);
  Json body;
  try {
    body = Json::parse(text);
  } catch (const Json::exception& e) {
    throw invalid_request(std::string("the request body is not valid JSON: ") + e.what(), {}, "invalid_json");
  }
  if (!body.is_object()) throw invalid_request("the request body must be a JSON object", {}, "invalid_json");
  return body;
}

const Json* field(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

[[noreturn]] void wrong_type(const std::string& name, const std::string& what) {
  throw invalid_request("'" + name + "' must be " + what, name, "invalid_type");
}

[[noreturn]] void out_of_range(const std::string& name, const std::string& range, const Json& got) {
  std::string shown = got.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (shown.size() > 64) shown = shown.substr(0, 64) + "...";
  throw invalid_request("'" + name + "' must be " + range + ", got " + shown, name, "invalid_value");
}

double number_in(const Json& body, const char* name, double lo, double hi, double dflt) {
  const Json* v = field(body, name);
  if (!v) return dflt;
  if (!v->is_number()) wrong_type(name, "a number");
  double d = v->get<double>();
  if (!(d >= lo && d <= hi)) out_of_range(name, "between " + Json(lo).dump() + " and " + Json(hi).dump(), *v);
  return d;
}

int64_t integer_in(const Json& v, const std::string& name, int64_t lo, int64_t hi, const std::string& range) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (hi < 0 || u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo)))
      out_of_range(name, range, v);
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) out_of_range(name, range, v);
    return i;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d != std::floor(d)) wrong_type(name, "an integer");
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi))) out_of_range(name, range, v);
    return static_cast<int64_t>(d);
  }
  wrong_type(name, "an integer");
}

}  // namespace clusterctl::server
