#include "worker/server/openai_protocol.h"

#include "worker/server/request_fields.h"
#include "worker/server/sampling_fields.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace clusterctl::server {

Json ApiError::body() const {
  Json error;
  error["message"] = what();
  error["type"] = type_;
  error["param"] = param_.empty() ? Json(nullptr) : Json(param_);
  error["code"] = code_.empty() ? Json(nullptr) : Json(code_);
  return Json{{"error", error}};
}

ApiError invalid_request(std::string message, std::string param, std::string code) {
  return ApiError(400, std::move(message), "invalid_request_error", std::move(param), std::move(code));
}

std::vector<FieldRule> request_field_rules(const ProtocolLimits& limits) {
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  return {
      {"model", "both", "string", "the served model's id (else 404 `model_not_found`)", "required"},
      {"messages", "chat", "array of objects",
       "1 or more `{role, content}`; `role` one of `system`, `developer`, `user`, `assistant`, `tool`; `content` a "
       "string or an array of `{\"type\": \"text\", \"text\": STRING}` parts",
       "required"},
      {"prompt", "completions", "string, or an array of one string", "any text", "required"},
      {"max_tokens` or `max_completion_tokens", "both", "integer",
       "1 .. " + std::to_string(limits.max_tokens_limit) + " (`--max-tokens`)",
       "default " + std::to_string(std::min(limits.default_chat_max_tokens, limits.max_tokens_limit)) + " for chat, " +
           std::to_string(std::min(limits.default_completion_max_tokens, limits.max_tokens_limit)) +
           " for completions (as OpenAI)"},
      {"temperature", "both", "number", num(kTemperatureMin) + " .. " + num(kTemperatureMax), "default 1; 0 is greedy"},
      {"top_p", "both", "number", num(kTopPMin) + " .. " + num(kTopPMax),
       "default 1; 0 keeps only the most likely token (greedy)"},
      {"seed", "both", "integer", "-2^63 .. 2^64-1", "same seed, same prompt, same answer"},
      {"top_k", "both", "integer", "0 .. 2^30", "default 0 (off): sample among the k most likely tokens"},
      {"min_p", "both", "number", "0 .. below 1",
       "default 0 (off): drop tokens less likely than `min_p` times the most likely one"},
      {"frequency_penalty", "both", "number", num(kPenaltyMin) + " .. " + num(kPenaltyMax),
       "default 0: taken off a token's logit once for every time this answer has it (the prompt does not count)"},
      {"presence_penalty", "both", "number", num(kPenaltyMin) + " .. " + num(kPenaltyMax),
       "default 0: taken off the logit of every token this answer has so far"},
      {"repetition_penalty", "both", "number", "above 0 .. " + num(kRepetitionPenaltyMax),
       "default 1 (off); llama.cpp's: the logits of the last 64 tokens (prompt included) divided by it (multiplied "
       "when negative)"},
      {"logit_bias", "both", "object",
       "up to " + std::to_string(kMaxLogitBiasEntries) +
           " `\"TOKEN_ID\": bias`, ids below the vocabulary size (`POST /tokenize`), bias " + num(kLogitBiasMin) +
           " .. " + num(kLogitBiasMax),
       "added to the token's logit; -100 bans the token"},
      {"logprobs", "chat", "boolean", "`true`, `false`",
       "`true`: `logprobs.content` gives each token's log-probability (the model's: before penalties, bias, "
       "temperature)"},
      {"top_logprobs", "chat", "integer", "0 .. " + std::to_string(kMaxTopLogprobs) + ", with `logprobs`",
       "each token's entry lists this many most likely tokens"},
      {"logprobs", "completions", "integer", "0 .. " + std::to_string(kMaxCompletionLogprobs),
       "`logprobs` with `tokens`, `token_logprobs`, `top_logprobs` (this many each), `text_offset`"},
      {"response_format", "both", "object",
       "`{\"type\": \"text\"}`, `{\"type\": \"json_object\"}`, `{\"type\": \"json_schema\", \"json_schema\": "
       "{\"name\", \"schema\", \"strict\"}}`",
       "the answer is a JSON object / a value of the schema (sampling is constrained; see Structured output)"},
      {"stop", "both", "string or array of strings",
       "up to " + std::to_string(kMaxStopStrings) + " strings of at most " + std::to_string(kMaxStopBytes) + " bytes",
       "the answer ends before the first one, which is not sent"},
      {"stream", "both", "boolean", "`true`, `false`", "`true`: server-sent events"},
      {"stream_options", "both", "object", "`include_usage`: a boolean",
       "with `stream`: one more chunk with empty `choices` and `usage` before `[DONE]`"},
      {"cache_prompt", "both", "boolean", "`true`, `false`",
       "default `true` (llama-server's): reuse the KV cache of the prompt prefix an earlier request left; `false`: "
       "compute the whole prompt (same tokens either way)"},
      {"return_token_ids", "both", "boolean", "`true`, `false`", "non-standard: each choice carries `token_ids`"},
      {"tools", "chat", "array of objects", "`{\"type\": \"function\", \"function\": {name, description, parameters}}`",
       "passed to the chat template; the model's calls come back as `tool_calls` (families in docs/api.md; other "
       "templates: 400)"},
      {"tool_choice", "chat", "string or object", "`\"auto\"`, `\"none\"` (`\"required\"` and a named function: 400)",
       "default `auto`; `none` does not tell the model of the tools"},
      {"parallel_tool_calls", "chat", "boolean", "`true`, `false`", "default `true`; `false` keeps the first call"},
      {"n` or `best_of", "both", "integer", "1", "one choice per request (send more requests for more)"},
      {"echo", "completions", "boolean", "`false`", "the prompt is not repeated"},
      {"suffix", "completions", "null", "`null`", "no fill-in-the-middle"},
      {"(any other)", "both", "any JSON", "numbers within a double's range", "ignored (e.g. `user`, `metadata`)"},
  };
}

std::string request_range_table_markdown(const ProtocolLimits& limits) {
  std::string out = "| field | endpoints | type | accepted | meaning |\n| --- | --- | --- | --- | --- |\n";
  for (const FieldRule& r : request_field_rules(limits)) {
    const std::string name = r.name.front() == '(' ? r.name : "`" + r.name + "`";
    out += "| " + name + " | " + r.endpoints + " | " + r.type + " | " + r.range + " | " + r.meaning + " |\n";
  }
  return out;
}

// Before parsing: nesting deeper than kMaxJsonDepth (the parser and every walk over the value
// are then bounded) and numbers no double holds (nlohmann::json throws out_of_range on them),
// named by the top-level field they are in.
void check_json_shape(const std::string& text) {
  int depth = 0;
  bool in_string = false, escape = false, expect_key = false;
  size_t string_start = 0;
  std::string key;  // the top-level field the scan is in
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
        if (depth == 1 && expect_key) key = text.substr(string_start, std::min<size_t>(i - string_start, 64));
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        string_start = i + 1;
        break;
      case '{':
      case '[':
        if (++depth > kMaxJsonDepth) {
          throw invalid_request(
              "the request body nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels", {},
              "invalid_json");
        }
        expect_key = depth == 1 && c == '{';
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      case ',':
        if (depth == 1) expect_key = true;
        break;
      case ':':
        if (depth == 1) expect_key = false;
        break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          size_t j = i;
          while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '-' ||
                                     text[j] == '+' || text[j] == '.' || text[j] == 'e' || text[j] == 'E')) {
            ++j;
          }
          const std::string number = text.substr(i, j - i);
          if (std::isinf(std::strtod(number.c_str(), nullptr))) {
            const std::string shown = number.size() > 40 ? number.substr(0, 40) + "..." : number;
            if (key.empty()) throw invalid_request("the number " + shown + " is out of range", {}, "invalid_value");
            throw invalid_request("'" + key + "' holds a number out of range: " + shown, key, "invalid_value");
          }
          i = j - 1;
        }
    }
  }
}

namespace {

int max_tokens_of(const Json& body, int dflt, const ProtocolLimits& limits) {
  const char* name = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const Json* v = field(body, name);
  if (!v) return std::min(dflt, limits.max_tokens_limit);
  return static_cast<int>(
      integer_in(*v, name, 1, limits.max_tokens_limit,
                 "between 1 and " + std::to_string(limits.max_tokens_limit) + " (this server's limit)"));
}

}  // namespace

uint64_t seed_of(const Json& v) {
  const std::string range = "an integer between -2^63 and 2^64-1";
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) return static_cast<uint64_t>(v.get<int64_t>());
  if (!v.is_number_float()) wrong_type("seed", "an integer");
  const double d = v.get<double>();
  if (d != std::floor(d)) wrong_type("seed", "an integer");
  if (!(d >= -9223372036854775808.0 && d < 18446744073709551616.0)) out_of_range("seed", range, v);
  return d < 0 ? static_cast<uint64_t>(static_cast<int64_t>(d)) : static_cast<uint64_t>(d);
}

namespace {

std::vector<std::string> stop_strings(const Json& body) {
  const Json* v = field(body, "stop");
  if (!v) return {};
  auto checked = [](const Json& s) {
    if (!s.is_string())
      wrong_type("stop", "a string or an array of up to " + std::to_string(kMaxStopStrings) + " strings");
    const auto& text = s.get_ref<const std::string&>();
    if (text.size() > kMaxStopBytes) {
      throw invalid_request("each stop string may be at most " + std::to_string(kMaxStopBytes) + " bytes long, got " +
                                std::to_string(text.size()),
                            "stop", "invalid_value");
    }
    return text;
  };
  if (v->is_string()) return {checked(*v)};
  if (!v->is_array())
    wrong_type("stop", "a string or an array of up to " + std::to_string(kMaxStopStrings) + " strings");
  if (v->size() > kMaxStopStrings) {
    throw invalid_request(
        "'stop' may hold up to " + std::to_string(kMaxStopStrings) + " strings, got " + std::to_string(v->size()),
        "stop", "invalid_value");
  }
  std::vector<std::string> out;
  for (const auto& s : *v) out.push_back(checked(s));
  return out;
}

void check_content(const Json& content, const std::string& param) {
  if (content.is_string()) return;
  if (!content.is_array()) wrong_type(param, "a string or an array of content parts");
  for (size_t k = 0; k < content.size(); ++k) {
    const Json& part = content[k];
    const std::string p = param + "[" + std::to_string(k) + "]";
    if (!part.is_object()) wrong_type(p, "an object {\"type\": \"text\", \"text\": ...}");
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) wrong_type(p + ".type", "a string");
    if (*type != "text") {
      throw invalid_request(p + ".type must be \"text\" (this server reads text only), got " +
                                type->dump(-1, ' ', false, Json::error_handler_t::replace).substr(0, 64),
                            p + ".type", "invalid_value");
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) wrong_type(p + ".text", "a string");
  }
}

std::string chat_prompt(const Json& body, const chat::ChatTemplate& chat_template, const ToolOffer& offer) {
  const Json* messages = field(body, "messages");
  if (!messages)
    throw invalid_request("missing required parameter 'messages'", "messages", "missing_required_parameter");
  if (!messages->is_array()) wrong_type("messages", "a non-empty array of {role, content} objects");
  if (messages->empty()) {
    throw invalid_request("'messages' must be a non-empty array of {role, content} objects", "messages",
                          "invalid_value");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw invalid_request(param + " must be an object", param, "invalid_type");
    auto role = m.find("role");
    if (role == m.end() || role->is_null()) {
      throw invalid_request(param + ".role is missing", param + ".role", "missing_required_parameter");
    }
    if (!role->is_string()) wrong_type(param + ".role", "a string");
    static const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool"};
    if (std::find(std::begin(kRoles), std::end(kRoles), role->get<std::string>()) == std::end(kRoles)) {
      throw invalid_request(param + ".role must be one of system, developer, user, assistant, tool; got '" +
                                role->get<std::string>().substr(0, 64) + "'",
                            param + ".role", "invalid_value");
    }
    auto content = m.find("content");
    bool tool_call = m.contains("tool_calls");
    if (content == m.end() || content->is_null()) {
      if (!tool_call)
        throw invalid_request(param + ".content is missing", param + ".content", "missing_required_parameter");
    } else {
      check_content(*content, param + ".content");
    }
  }
  Json normalized = *messages;
  for (auto& m : normalized) {
    if (m["role"] == "developer") m["role"] = "system";  // newer OpenAI clients' name for system
  }
  Json extra = Json::object();
  if (offer.active()) extra["tools"] = offer.tools;
  try {
    return chat_template.render(normalized, true, extra);
  } catch (const std::exception& e) {
    throw invalid_request(std::string("the model's chat template rejected the messages: ") + e.what(), "messages",
                          "invalid_messages");
  }
}

std::string completion_prompt(const Json& body) {
  const Json* prompt = field(body, "prompt");
  if (!prompt) throw invalid_request("missing required parameter 'prompt'", "prompt", "missing_required_parameter");
  if (prompt->is_string()) return prompt->get<std::string>();
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) return (*prompt)[0].get<std::string>();
  if (prompt->is_array() && prompt->size() > 1) {
    throw invalid_request("'prompt' must be one string (several prompts per request are not supported)", "prompt",
                          "invalid_value");
  }
  wrong_type("prompt", "a string (token arrays are not supported)");
}

ApiRequest parse_checked(Endpoint endpoint, const std::string& body_text, const ModelInfo& model,
                         const chat::ChatTemplate& chat_template, const ProtocolLimits& limits) {
  const Json body = parse_request_body(body_text);
  ApiRequest req;
  req.endpoint = endpoint;
  const Json* model_field = field(body, "model");
  if (!model_field) throw invalid_request("missing required parameter 'model'", "model", "missing_required_parameter");
  if (!model_field->is_string()) throw invalid_request("'model' must be a string", "model", "invalid_type");
  req.model = model_field->get<std::string>();
  if (req.model != model.id) {
    throw ApiError(404,
                   "The model '" + req.model.substr(0, 200) + "' does not exist; this server serves '" + model.id +
                       "' (GET /v1/models)",
                   "invalid_request_error", "model", "model_not_found");
  }
  if (const Json* s = field(body, "stream")) {
    if (!s->is_boolean()) throw invalid_request("'stream' must be a boolean", "stream", "invalid_type");
    req.stream = s->get<bool>();
  }
  if (const Json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw invalid_request("'stream_options' must be an object", "stream_options", "invalid_type");
    if (const Json* iu = field(*so, "include_usage")) {
      if (!iu->is_boolean()) wrong_type("stream_options.include_usage", "a boolean");
      req.include_usage = iu->get<bool>();
    }
  }
  if (const Json* r = field(body, "return_token_ids")) {
    if (!r->is_boolean())
      throw invalid_request("'return_token_ids' must be a boolean", "return_token_ids", "invalid_type");
    req.return_token_ids = r->get<bool>();
  }

  GenerationRequest& g = req.generation;
  if (const Json* c = field(body, "cache_prompt")) {
    if (!c->is_boolean()) wrong_type("cache_prompt", "a boolean");
    g.cache_prompt = c->get<bool>();
  }
  g.sampling.temperature = static_cast<float>(number_in(body, "temperature", kTemperatureMin, kTemperatureMax, 1.0));
  g.sampling.top_p = static_cast<float>(number_in(body, "top_p", kTopPMin, kTopPMax, 1.0));
  if (const Json* seed = field(body, "seed")) g.sampling.seed = seed_of(*seed);
  parse_sampling_fields(body, endpoint, model, g.sampling);
  g.stop = stop_strings(body);
  if (endpoint == Endpoint::chat_completions) {
    g.max_tokens = max_tokens_of(body, limits.default_chat_max_tokens, limits);
    const ToolOffer offer = openai_tool_offer(body, chat_template);
    g.prompt = chat_prompt(body, chat_template, offer);
    if (offer.active()) {
      if (g.sampling.constrain_json) {
        throw invalid_request(
            "'response_format' and 'tools' cannot be combined: an answer constrained to JSON cannot hold the "
            "model's tool-call markup; use one of them (or tool_choice \"none\")",
            "response_format", "invalid_value");
      }
      req.tool_format = offer.format;
      req.parallel_tool_calls = offer.parallel;
      g.render_special = true;  // tool-call markers may be control tokens (<|python_tag|>)
    }
    g.templated = true;
    for (const auto& s : chat_template.implied_stop_strings()) g.stop.push_back(s);
  } else {
    g.max_tokens = max_tokens_of(body, limits.default_completion_max_tokens, limits);
    g.prompt = completion_prompt(body);
    g.templated = false;
  }
  return req;
}

}  // namespace

ApiRequest parse_api_request(Endpoint endpoint, const std::string& body_text, const ModelInfo& model,
                             const chat::ChatTemplate& chat_template, const ProtocolLimits& limits) {
  try {
    return parse_checked(endpoint, body_text, model, chat_template, limits);
  } catch (const ApiError&) {
    throw;
  } catch (const std::exception& e) {
    // Every refusal above is an ApiError naming its field; anything else is still the request's fault.
    throw invalid_request(std::string("the request cannot be served: ") + e.what(), {}, "invalid_value");
  }
}

std::string finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::length:
      return "length";
    default:
      return "stop";
  }
}

Json usage_json(const Usage& usage) {
  return Json{{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
              {"prompt_tokens_details", Json{{"cached_tokens", usage.cached_tokens}}}};
}

namespace {

Json envelope(const ApiRequest& request, const std::string& id, int64_t created, bool chunk) {
  const bool chat = request.endpoint == Endpoint::chat_completions;
  return Json{{"id", id},
              {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
              {"created", created},
              {"model", request.model}};
}

}  // namespace

Json logprobs_json(const ApiRequest& request, const std::vector<TokenLogprobs>* logprobs, size_t text_offset) {
  if (request.generation.sampling.logprobs < 0) return nullptr;
  static const std::vector<TokenLogprobs> kNone;
  const auto& entries = logprobs ? *logprobs : kNone;
  // Token text may be part of a UTF-8 character: "bytes" has it exactly, "token" with U+FFFD.
  auto bytes = [](const std::string& t) {
    Json b = Json::array();
    for (unsigned char c : t) b.push_back(static_cast<int>(c));
    return b;
  };
  if (request.endpoint == Endpoint::chat_completions) {
    Json content = Json::array();
    for (const TokenLogprobs& e : entries) {
      Json top = Json::array();
      for (const TokenLogprob& t : e.top)
        top.push_back(Json{{"token", t.text}, {"logprob", t.logprob}, {"bytes", bytes(t.text)}});
      content.push_back(Json{{"token", e.chosen.text},
                             {"logprob", e.chosen.logprob},
                             {"bytes", bytes(e.chosen.text)},
                             {"top_logprobs", top}});
    }
    return Json{{"content", content}, {"refusal", nullptr}};
  }
  Json tokens = Json::array(), token_logprobs = Json::array(), top = Json::array(), offsets = Json::array();
  for (const TokenLogprobs& e : entries) {
    tokens.push_back(e.chosen.text);
    token_logprobs.push_back(e.chosen.logprob);
    Json alternatives = Json::object();
    for (const TokenLogprob& t : e.top)
      if (!alternatives.contains(t.text)) alternatives[t.text] = t.logprob;
    top.push_back(alternatives);
    offsets.push_back(text_offset);
    text_offset += e.chosen.text.size();
  }
  return Json{{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

Json completion_response(const ApiRequest& request, const std::string& id, int64_t created, const std::string& text,
                         const std::string& finish_reason, const Usage& usage, const std::vector<int32_t>* token_ids,
                         const std::vector<TokenLogprobs>* logprobs) {
  Json out = envelope(request, id, created, false);
  Json choice = {{"index", 0}};
  if (request.endpoint == Endpoint::chat_completions) {
    choice["message"] = Json{{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  if (request.return_token_ids) choice["token_ids"] = token_ids ? Json(*token_ids) : Json::array();
  choice["logprobs"] = logprobs_json(request, logprobs, 0);
  choice["finish_reason"] = finish_reason;
  out["choices"] = Json::array({choice});
  out["usage"] = usage_json(usage);
  return out;
}

Json stream_chunk(const ApiRequest& request, const std::string& id, int64_t created, const std::string& text,
                  bool first, const std::optional<std::string>& finish_reason, const std::vector<int32_t>* token_ids,
                  const std::vector<TokenLogprobs>* logprobs, size_t text_offset) {
  Json out = envelope(request, id, created, true);
  Json choice = {{"index", 0}};
  if (request.endpoint == Endpoint::chat_completions) {
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish_reason)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  if (request.return_token_ids) choice["token_ids"] = token_ids ? Json(*token_ids) : Json::array();
  choice["logprobs"] = logprobs_json(request, logprobs, text_offset);
  choice["finish_reason"] = finish_reason ? Json(*finish_reason) : Json(nullptr);
  out["choices"] = Json::array({choice});
  if (request.include_usage) out["usage"] = nullptr;  // as OpenAI: only the last chunk has it
  return out;
}

Json stream_usage_chunk(const ApiRequest& request, const std::string& id, int64_t created, const Usage& usage) {
  Json out = envelope(request, id, created, true);
  out["choices"] = Json::array();
  out["usage"] = usage_json(usage);
  return out;
}

Json models_response(const ModelInfo& model, int64_t created) {
  Json entry = {{"id", model.id}, {"object", "model"}, {"created", created}, {"owned_by", "clusterctl"}};
  if (model.context_length > 0) entry["context_length"] = model.context_length;
  return Json{{"object", "list"}, {"data", Json::array({entry})}};
}

std::string sse_event(const Json& payload) {
  return "data: " + payload.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

std::string Utf8Joiner::feed(std::string_view piece) {
  pending_ += piece;
  // Find where the last character starts and whether all of its bytes are here.
  size_t n = pending_.size();
  size_t i = n;
  size_t back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>(pending_[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++back;
  }
  size_t cut = n;
  if (i > 0) {
    unsigned char lead = static_cast<unsigned char>(pending_[i - 1]);
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need > 1 && back + 1 < need) cut = i - 1;  // incomplete: hold the lead byte and its continuations
  }
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string Utf8Joiner::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace clusterctl::server
