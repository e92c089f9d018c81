#include "worker/server/model_endpoints.h"

#include "worker/server/request_fields.h"

namespace clusterctl::server {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes decoded (a malformed one stays as it is).
std::string percent_decoded(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool valid_utf8(const std::string& s) {
  constexpr size_t kBad = 9;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t extra = c < 0x80                   ? 0
                         : (c >= 0xC2 && c <= 0xDF) ? 1
                         : (c >= 0xE0 && c <= 0xEF) ? 2
                         : (c >= 0xF0 && c <= 0xF4) ? 3
                                                    : kBad;
    if (extra == kBad || i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += extra + 1;
  }
  return true;
}

bool flag(const Json& body, const char* name, bool dflt) {
  const Json* v = field(body, name);
  if (!v) return dflt;
  if (!v->is_boolean()) wrong_type(name, "a boolean");
  return v->get<bool>();
}

[[noreturn]] void no_tokenizer(const std::exception& e) {
  throw ApiError(501, std::string(e.what()), "invalid_request_error", {}, "not_implemented");
}

}  // namespace

Json model_reply(const ModelInfo& model, const std::string& encoded_id, int64_t created) {
  const std::string id = percent_decoded(encoded_id);
  if (id != model.id) {
    throw ApiError(
        404,
        "The model '" + id.substr(0, 200) + "' does not exist; this server serves '" + model.id + "' (GET /v1/models)",
        "invalid_request_error", "model", "model_not_found");
  }
  return models_response(model, created)["data"][0];
}

Json tokenize_reply(const std::string& text, const GenerationService& service) {
  const Json body = parse_request_body(text);
  const Json* content = field(body, "content");
  if (!content) throw invalid_request("missing required parameter 'content'", "content", "missing_required_parameter");
  if (!content->is_string()) wrong_type("content", "a string");
  const bool add_special = flag(body, "add_special", false);
  const bool parse_special = flag(body, "parse_special", true);
  const bool with_pieces = flag(body, "with_pieces", false);
  std::vector<int32_t> ids;
  try {
    ids = service.tokenize(content->get<std::string>(), add_special, parse_special);
  } catch (const ApiError&) {
    throw;
  } catch (const std::exception& e) {
    no_tokenizer(e);
  }
  Json tokens = Json::array();
  for (int32_t id : ids) {
    if (!with_pieces) {
      tokens.push_back(id);
      continue;
    }
    const std::string piece = service.token_text(id);
    Json shown = valid_utf8(piece) ? Json(piece) : Json::array();
    if (shown.is_array())
      for (unsigned char c : piece) shown.push_back(static_cast<int>(c));
    tokens.push_back(Json{{"id", id}, {"piece", shown}});
  }
  return Json{{"tokens", tokens}};
}

Json detokenize_reply(const std::string& text, const GenerationService& service) {
  const Json body = parse_request_body(text);
  const Json* tokens = field(body, "tokens");
  if (!tokens) throw invalid_request("missing required parameter 'tokens'", "tokens", "missing_required_parameter");
  if (!tokens->is_array()) wrong_type("tokens", "an array of token ids");
  if (tokens->size() > kMaxDetokenizeTokens) {
    throw invalid_request("'tokens' may hold up to " + std::to_string(kMaxDetokenizeTokens) + " ids, got " +
                              std::to_string(tokens->size()),
                          "tokens", "invalid_value");
  }
  const ModelInfo& model = service.model();
  const int64_t top = model.n_vocab > 0 ? model.n_vocab - 1 : 0x7fffffff;
  std::vector<int32_t> ids;
  for (size_t i = 0; i < tokens->size(); ++i) {
    ids.push_back(static_cast<int32_t>(integer_in((*tokens)[i], "tokens[" + std::to_string(i) + "]", 0, top,
                                                  "a token id between 0 and " + std::to_string(top))));
  }
  try {
    return Json{{"content", service.detokenize(ids)}};
  } catch (const ApiError&) {
    throw;
  } catch (const std::exception& e) {
    no_tokenizer(e);
  }
}

}  // namespace clusterctl::server
