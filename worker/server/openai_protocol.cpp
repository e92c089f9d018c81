#include "worker/server/openai_protocol.h"

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

namespace {

const Json* field(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number_in(const Json& body, const char* name, double lo, double hi, double dflt) {
  const Json* v = field(body, name);
  if (!v) return dflt;
  if (!v->is_number()) throw invalid_request(std::string("'") + name + "' must be a number", name, "invalid_type");
  double d = v->get<double>();
  if (d < lo || d > hi) {
    throw invalid_request(std::string("'") + name + "' must be between " + Json(lo).dump() + " and " + Json(hi).dump() +
                              ", got " + v->dump(),
                          name, "invalid_value");
  }
  return d;
}

int max_tokens_of(const Json& body, int dflt, const ProtocolLimits& limits) {
  const char* name = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const Json* v = field(body, name);
  if (!v) return std::min(dflt, limits.max_tokens_limit);
  if (!v->is_number_integer()) throw invalid_request(std::string("'") + name + "' must be an integer", name, "invalid_type");
  int64_t n = v->get<int64_t>();
  if (n < 1 || n > limits.max_tokens_limit) {
    throw invalid_request(std::string("'") + name + "' must be between 1 and " + std::to_string(limits.max_tokens_limit) +
                              " (this server's limit), got " + std::to_string(n),
                          name, "invalid_value");
  }
  return static_cast<int>(n);
}

std::vector<std::string> stop_strings(const Json& body) {
  const Json* v = field(body, "stop");
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array() || v->size() > 4) {
    throw invalid_request("'stop' must be a string or an array of up to 4 strings", "stop", "invalid_value");
  }
  std::vector<std::string> out;
  for (const auto& s : *v) {
    if (!s.is_string()) throw invalid_request("'stop' must contain only strings", "stop", "invalid_type");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::string chat_prompt(const Json& body, const chat::ChatTemplate& chat_template) {
  const Json* messages = field(body, "messages");
  if (!messages) throw invalid_request("missing required parameter 'messages'", "messages", "missing_required_parameter");
  if (!messages->is_array() || messages->empty()) {
    throw invalid_request("'messages' must be a non-empty array of {role, content} objects", "messages", "invalid_value");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw invalid_request(param + " must be an object", param, "invalid_type");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      throw invalid_request(param + ".role is missing or not a string", param + ".role", "missing_required_parameter");
    }
    static const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool"};
    if (std::find(std::begin(kRoles), std::end(kRoles), role->get<std::string>()) == std::end(kRoles)) {
      throw invalid_request(param + ".role must be one of system, user, assistant, tool; got '" + role->get<std::string>() + "'",
                            param + ".role", "invalid_value");
    }
    auto content = m.find("content");
    bool tool_call = m.contains("tool_calls");
    if (content == m.end() || content->is_null()) {
      if (!tool_call) throw invalid_request(param + ".content is missing", param + ".content", "missing_required_parameter");
    } else if (!content->is_string() && !content->is_array()) {
      throw invalid_request(param + ".content must be a string or an array of content parts", param + ".content", "invalid_type");
    }
  }
  Json normalized = *messages;
  for (auto& m : normalized) {
    if (m["role"] == "developer") m["role"] = "system";  // newer OpenAI clients' name for system
  }
  Json extra = Json::object();
  if (const Json* tools = field(body, "tools")) extra["tools"] = *tools;
  try {
    return chat_template.render(normalized, true, extra);
  } catch (const chat::TemplateError& e) {
    throw invalid_request(std::string("the model's chat template rejected the messages: ") + e.what(), "messages",
                          "invalid_messages");
  }
}

std::string completion_prompt(const Json& body) {
  const Json* prompt = field(body, "prompt");
  if (!prompt) throw invalid_request("missing required parameter 'prompt'", "prompt", "missing_required_parameter");
  if (prompt->is_string()) return prompt->get<std::string>();
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) return (*prompt)[0].get<std::string>();
  throw invalid_request("'prompt' must be a string (token arrays and several prompts per request are not supported)",
                        "prompt", "invalid_value");
}

}  // namespace

ApiRequest parse_api_request(Endpoint endpoint, const std::string& body_text, const ModelInfo& model,
                             const chat::ChatTemplate& chat_template, const ProtocolLimits& limits) {
  Json body;
  try {
    body = Json::parse(body_text);
  } catch (const Json::parse_error& e) {
    throw invalid_request(std::string("the request body is not valid JSON: ") + e.what(), {}, "invalid_json");
  }
  if (!body.is_object()) throw invalid_request("the request body must be a JSON object", {}, "invalid_json");

  ApiRequest req;
  req.endpoint = endpoint;
  const Json* model_field = field(body, "model");
  if (!model_field) throw invalid_request("missing required parameter 'model'", "model", "missing_required_parameter");
  if (!model_field->is_string()) throw invalid_request("'model' must be a string", "model", "invalid_type");
  req.model = model_field->get<std::string>();
  if (req.model != model.id) {
    throw ApiError(404, "The model '" + req.model + "' does not exist; this server serves '" + model.id + "' (GET /v1/models)",
                   "invalid_request_error", "model", "model_not_found");
  }
  if (const Json* n = field(body, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1)) {
    throw invalid_request("only n=1 is supported", "n", "invalid_value");
  }
  if (const Json* s = field(body, "stream")) {
    if (!s->is_boolean()) throw invalid_request("'stream' must be a boolean", "stream", "invalid_type");
    req.stream = s->get<bool>();
  }
  if (const Json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw invalid_request("'stream_options' must be an object", "stream_options", "invalid_type");
    req.include_usage = so->value("include_usage", false);
  }
  if (const Json* r = field(body, "return_token_ids")) {
    if (!r->is_boolean()) throw invalid_request("'return_token_ids' must be a boolean", "return_token_ids", "invalid_type");
    req.return_token_ids = r->get<bool>();
  }

  GenerationRequest& g = req.generation;
  if (endpoint == Endpoint::chat_completions) {
    g.prompt = chat_prompt(body, chat_template);
    g.templated = true;
    g.max_tokens = max_tokens_of(body, limits.default_chat_max_tokens, limits);
  } else {
    g.prompt = completion_prompt(body);
    g.templated = false;
    g.max_tokens = max_tokens_of(body, limits.default_completion_max_tokens, limits);
  }
  g.sampling.temperature = static_cast<float>(number_in(body, "temperature", 0.0, 2.0, 1.0));
  g.sampling.top_p = static_cast<float>(number_in(body, "top_p", 0.0, 1.0, 1.0));
  if (const Json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) throw invalid_request("'seed' must be an integer", "seed", "invalid_type");
    g.sampling.seed = static_cast<uint64_t>(seed->get<int64_t>());
  }
  g.stop = stop_strings(body);
  if (endpoint == Endpoint::chat_completions) {
    for (const auto& s : chat_template.implied_stop_strings()) g.stop.push_back(s);
  }
  return req;
}

std::string finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::length: return "length";
    default: return "stop";
  }
}

Json usage_json(const Usage& usage) {
  return Json{{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
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

Json completion_response(const ApiRequest& request, const std::string& id, int64_t created, const std::string& text,
                         const std::string& finish_reason, const Usage& usage, const std::vector<int32_t>* token_ids) {
  Json out = envelope(request, id, created, false);
  Json choice = {{"index", 0}};
  if (request.endpoint == Endpoint::chat_completions) {
    choice["message"] = Json{{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  if (request.return_token_ids) choice["token_ids"] = token_ids ? Json(*token_ids) : Json::array();
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason;
  out["choices"] = Json::array({choice});
  out["usage"] = usage_json(usage);
  return out;
}

Json stream_chunk(const ApiRequest& request, const std::string& id, int64_t created, const std::string& text,
                  bool first, const std::optional<std::string>& finish_reason,
                  const std::vector<int32_t>* token_ids) {
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
  choice["logprobs"] = nullptr;
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
