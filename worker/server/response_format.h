#pragma once
// Structured output requests: `response_format` ({"type": "text" | "json_object" | "json_schema"})
// and the JSON Schema subset it may carry, compiled for the sampler's matcher
// (worker/sampling/json_matcher.h). Unsupported keywords are refused, never ignored.
#include <memory>
#include <string>

#include "worker/sampling/json_matcher.h"
#include "worker/server/openai_protocol.h"

namespace clusterctl::server {

inline constexpr size_t kMaxSchemaNodes = 256;       // subschemas in one schema
inline constexpr int kMaxSchemaDepth = 16;           // nesting of subschemas
inline constexpr size_t kMaxAnyOf = 16;              // alternatives of one anyOf
inline constexpr size_t kMaxLiteralBytes = 1024;     // each enum/const value as JSON text
inline constexpr int64_t kMaxSchemaCount = 1000000;  // minItems/maxItems/minLength/maxLength

// Reads `response_format` into sampling.constrain_json / json_schema. Throws ApiError (400).
void parse_response_format(const Json& value, SamplingParams& sampling);

// Compiles `schema` (the supported subset: type, properties, required, additionalProperties, items,
// enum, const, anyOf, minItems, maxItems, minLength, maxLength; title/description/default/examples/
// $schema/$id/$comment are notes and pass). Throws ApiError naming `param` and any other keyword.
std::shared_ptr<const sampling::JsonSchema> compile_json_schema(const Json& schema, const std::string& param);

}  // namespace clusterctl::server
