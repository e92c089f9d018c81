#pragma once
// Reading one field of a request body: present or not, its type and its range, each refusal an
// ApiError (400) that names the field. Shared by the request parsers of every wire format
// (request_fields.cpp; check_json_shape and seed_of in openai_protocol.cpp).
#include <cstdint>
#include <string>

#include "worker/server/openai_protocol.h"

namespace clusterctl::server {

// A request body: one JSON object within the shape limits (check_json_shape), else a 400.
Json parse_request_body(const std::string& text);
// The field, or null when absent or JSON null.
const Json* field(const Json& body, const char* name);
[[noreturn]] void wrong_type(const std::string& name, const std::string& what);
[[noreturn]] void out_of_range(const std::string& name, const std::string& range, const Json& got);
// Before parsing a body: nesting deeper than kMaxJsonDepth and numbers no double holds.
void check_json_shape(const std::string& text);
// A number lo .. hi (dflt when absent).
double number_in(const Json& body, const char* name, double lo, double hi, double dflt);
// An integer (or an integral number) lo .. hi; `range` words the refusal.
int64_t integer_in(const Json& v, const std::string& name, int64_t lo, int64_t hi, const std::string& range);
// A seed: any integer from -2^63 to 2^64-1.
uint64_t seed_of(const Json& v);

}  // namespace clusterctl::server
