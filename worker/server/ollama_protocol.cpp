#include "worker/server/ollama_protocol.h"

#include <chrono>
#include <cmath>
#include <ctime>

#include "worker/server/request_fields.h"
#include "worker/server/response_format.h"
#include "worker/server/sampling_fields.h"
#include "worker/server/tool_requests.h"

namespace clusterctl::server {

namespace {

// Ollama names carry a tag; this server's one model answers to its id with or without ":latest".
void check_model(const Json& body, const ModelInfo& model) {
  const Json* m = field(body, "model");
  if (!m) m = field(body, "name");  // older clients
  if (!m) throw invalid_request("missing required parameter 'model'", "model", "missing_required_parameter");
  if (!m->is_string()) wrong_type("model", "a string");
  const std::string& name = m->get_ref<const std::string&>();
  if (name != model.id && name != model.id + ":latest") {
    throw ApiError(404,
                   "model '" + name.substr(0, 200) + "' not found: this server serves '" + model.id +
                       "' (GET /api/tags); clusterctl serves the model it was started with",
                   "invalid_request_error", "model", "model_not_found");
  }
}

// The options Ollama's runner reads, each used or refused.
void apply_options(const Json& body, GenerationRequest& g, int& max_tokens, const ModelInfo& model,
                   const ProtocolLimits& limits) {
  const Json* options = field(body, "options");
  if (!options) return;
  if (!options->is_object()) wrong_type("options", "an object");
  for (const auto& [key, value] : options->items()) {
    if (value.is_null()) continue;
    const std::string name = "options." + key;
    if (key == "temperature") {
      g.sampling.temperature =
          static_cast<float>(number_in(*options, "temperature", kTemperatureMin, kTemperatureMax, 1));
    } else if (key == "top_p") {
      g.sampling.top_p = static_cast<float>(number_in(*options, "top_p", kTopPMin, kTopPMax, 1));
    } else if (key == "seed") {
      g.sampling.seed = seed_of(value);
    } else if (key == "top_k") {
      g.sampling.top_k = static_cast<int>(integer_in(value, name, 0, kMaxTopK, "an integer of 0 (off) or more"));
    } else if (key == "min_p") {
      if (!value.is_number()) wrong_type(name, "a number");
      if (!(value.get<double>() >= 0 && value.get<double>() < 1)) out_of_range(name, "at least 0 and below 1", value);
      g.sampling.min_p = value.get<float>();
    } else if (key == "repeat_penalty") {
      if (!value.is_number()) wrong_type(name, "a number");
      if (!(value.get<double>() > 0 && value.get<double>() <= kRepetitionPenaltyMax))
        out_of_range(name, "above 0 and at most 10 (1 = off)", value);
      g.sampling.repetition_penalty = value.get<float>();
    } else if (key == "presence_penalty" || key == "frequency_penalty") {
      const float v = static_cast<float>(number_in(*options, key.c_str(), kPenaltyMin, kPenaltyMax, 0));
      (key == "presence_penalty" ? g.sampling.presence_penalty : g.sampling.frequency_penalty) = v;
    } else if (key == "num_predict") {
      // -1: no limit, -2: fill the context; both are this server's --max-tokens limit.
      const int64_t n =
          integer_in(value, name, -2, limits.max_tokens_limit,
                     "-1, -2 or 1 .. " + std::to_string(limits.max_tokens_limit) + " (this server's limit)");
      if (n == 0) out_of_range(name, "-1, -2 or 1 .. " + std::to_string(limits.max_tokens_limit), value);
      max_tokens = n < 0 ? limits.max_tokens_limit : static_cast<int>(n);
    } else if (key == "stop") {
      if (!value.is_array() || value.size() > kMaxStopStrings) {
        wrong_type(name, "an array of up to " + std::to_string(kMaxStopStrings) + " strings");
      }
      for (const auto& s : value) {
        if (!s.is_string() || s.get_ref<const std::string&>().size() > kMaxStopBytes) {
          wrong_type(name, "an array of strings of at most " + std::to_string(kMaxStopBytes) + " bytes");
        }
        g.stop.push_back(s.get<std::string>());
      }
    } else if (key == "repeat_last_n") {
      // repeat_penalty looks at the last 64 tokens here (Ollama's default window).
      integer_in(value, name, 64, 64, "64 (the window repeat_penalty uses on this server)");
    } else if (key == "num_ctx") {
      // The context is fixed when the server starts; a request fits in it or is refused.
      integer_in(value, name, 1, model.context_length,
                 "at most this server's context of " + std::to_string(model.context_length) +
                     " tokens (set with --ctx-size when starting it)");
    } else {
      throw invalid_request("option '" + key.substr(0, 64) +
                                "' is not supported by this server; supported options: temperature, top_p, top_k, "
                                "min_p, repeat_penalty, repeat_last_n (64), presence_penalty, frequency_penalty, seed, "
                                "num_predict, stop, "
                                "num_ctx (docs/api.md)",
                            name, "unsupported_option");
    }
  }
}

// Structured output: "json" (a JSON object) or a JSON Schema, as response_format on /v1.
void apply_format(const Json& body, SamplingParams& sampling) {
  const Json* f = field(body, "format");
  if (!f || (f->is_string() && f->get_ref<const std::string&>().empty())) return;
  if (f->is_string() && f->get_ref<const std::string&>() == "json") {
    sampling.constrain_json = true;
    return;
  }
  if (!f->is_object()) wrong_type("format", "\"json\" or a JSON Schema object");
  sampling.constrain_json = true;
  sampling.json_schema = compile_json_schema(*f, "format");
}

// Fields Ollama accepts that this server has no use for get a 400 unless they ask for nothing.
void refuse_unsupported(const Json& body) {
  if (const Json* t = field(body, "think")) {
    if (!t->is_boolean()) wrong_type("think", "a boolean");
    if (t->get<bool>()) {
      throw invalid_request("'think': true is not supported (no separate reasoning output); leave it out", "think",
                            "unsupported_field");
    }
  }
  if (const Json* k = field(body, "keep_alive")) {
    // The model stays loaded while the server runs; any duration is what already happens.
    if (!k->is_string() && !k->is_number()) wrong_type("keep_alive", "a duration string or a number of seconds");
  }
  for (const char* name : {"images", "context"}) {
    if (const Json* v = field(body, name); v && !(v->is_array() && v->empty())) {
      throw invalid_request(std::string("'") + name + "' is not supported by this server (text only); leave it out",
                            name, "unsupported_field");
    }
  }
  for (const char* name : {"suffix", "template"}) {
    if (const Json* v = field(body, name); v && !(v->is_string() && v->get_ref<const std::string&>().empty())) {
      throw invalid_request(std::string("'") + name + "' is not supported by this server; leave it out", name,
                            "unsupported_field");
    }
  }
}

bool stream_of(const Json& body) {
  const Json* s = field(body, "stream");
  if (!s) return true;  // Ollama streams unless told not to
  if (!s->is_boolean()) wrong_type("stream", "a boolean");
  return s->get<bool>();
}

std::string string_field(const Json& o, const char* name, const std::string& param) {
  const Json* v = field(o, name);
  if (!v) return {};
  if (!v->is_string()) wrong_type(param, "a string");
  return v->get<std::string>();
}

// Ollama messages -> OpenAI-shaped ones for the chat template.
Json chat_messages(const Json& body) {
  const Json* messages = field(body, "messages");
  if (!messages || !messages->is_array()) wrong_type("messages", "an array of {role, content} objects");
  Json out = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) wrong_type(param, "an object {role, content}");
    const std::string role = string_field(m, "role", param + ".role");
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      throw invalid_request(param + ".role must be one of system, user, assistant, tool", param + ".role",
                            "invalid_value");
    }
    if (const Json* images = field(m, "images"); images && !(images->is_array() && images->empty())) {
      throw invalid_request(param + ".images is not supported by this server (text only)", param + ".images",
                            "unsupported_field");
    }
    Json message = {{"role", role}, {"content", string_field(m, "content", param + ".content")}};
    if (const Json* calls = field(m, "tool_calls")) {
      if (!calls->is_array()) wrong_type(param + ".tool_calls", "an array");
      Json openai = Json::array();
      for (size_t k = 0; k < calls->size(); ++k) {
        const Json& c = (*calls)[k];
        const std::string cp = param + ".tool_calls[" + std::to_string(k) + "].function";
        const Json* fn = c.is_object() ? field(c, "function") : nullptr;
        if (!fn || !fn->is_object()) wrong_type(cp, "an object {name, arguments}");
        const std::string name = string_field(*fn, "name", cp + ".name");
        const Json* args = field(*fn, "arguments");
        if (args && !args->is_object()) wrong_type(cp + ".arguments", "an object");
        openai.push_back(Json{{"id", "call_" + std::to_string(i) + "_" + std::to_string(k)},
                              {"type", "function"},
                              {"function", {{"name", name}, {"arguments", args ? *args : Json::object()}}}});
      }
      message["tool_calls"] = std::move(openai);
    }
    if (role == "tool") {
      const std::string name = string_field(m, "tool_name", param + ".tool_name");
      if (!name.empty()) message["name"] = name;
    }
    out.push_back(std::move(message));
  }
  return out;
}

Json generate_messages(const Json& body) {
  Json out = Json::array();
  const std::string system = string_field(body, "system", "system");
  if (!system.empty()) out.push_back(Json{{"role", "system"}, {"content", system}});
  out.push_back(Json{{"role", "user"}, {"content", string_field(body, "prompt", "prompt")}});
  return out;
}

int64_t nanoseconds(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }

class OllamaWriter : public ResponseWriter {
 public:
  OllamaWriter(OllamaEndpoint endpoint, std::string model) : endpoint_(endpoint), model_(std::move(model)) {}

  std::string stream_content_type() const override { return "application/x-ndjson"; }
  std::string stream_begin() override { return {}; }
  std::string stream_text(const std::string& text, std::vector<int32_t>& token_ids) override {
    token_ids.clear();
    return line(piece(text, {}, false));
  }
  std::string stream_tool_calls(const std::vector<chat::ToolCall>& calls, size_t) override {
    return line(piece("", calls, false));
  }
  std::string stream_end(const Outcome& outcome, std::vector<int32_t>& token_ids) override {
    token_ids.clear();
    std::string out;
    if (outcome.tool_calls.size() > outcome.streamed_calls) {
      out += stream_tool_calls({outcome.tool_calls.begin() + outcome.streamed_calls, outcome.tool_calls.end()}, 0);
    }
    return out + line(last(piece("", {}, true), outcome));
  }
  std::string stream_error(const ApiError& error) override { return line(Json{{"error", error.what()}}); }
  std::string whole(const std::string& text, const Outcome& outcome, const std::vector<int32_t>&) override {
    return last(piece(text, outcome.tool_calls, true), outcome).dump(-1, ' ', false, Json::error_handler_t::replace);
  }

 private:
  static std::string line(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; }

  Json piece(const std::string& text, const std::vector<chat::ToolCall>& calls, bool done) const {
    Json out = {{"model", model_}, {"created_at", rfc3339_now()}};
    if (endpoint_ == OllamaEndpoint::chat) {
      Json message = {{"role", "assistant"}, {"content", text}};
      if (!calls.empty()) {
        Json list = Json::array();
        for (const auto& c : calls) {
          list.push_back(Json{{"function", {{"name", c.name}, {"arguments", Json::parse(c.arguments)}}}});
        }
        message["tool_calls"] = std::move(list);
      }
      out["message"] = std::move(message);
    } else {
      out["response"] = text;
    }
    out["done"] = done;
    return out;
  }

  static Json last(Json out, const Outcome& o) {
    out["done_reason"] = o.reason == FinishReason::length ? "length" : "stop";
    out["total_duration"] = nanoseconds(o.total_seconds);
    out["load_duration"] = 0;  // the model is loaded when the server starts
    out["prompt_eval_count"] = o.usage.prompt_tokens;
    out["prompt_eval_duration"] = nanoseconds(o.prompt_seconds);
    out["eval_count"] = o.usage.completion_tokens;
    out["eval_duration"] = nanoseconds(o.total_seconds - o.prompt_seconds);
    return out;
  }

  OllamaEndpoint endpoint_;
  std::string model_;
};

Json details(const ModelInfo& model) {
  return Json{{"parent_model", ""},           {"format", "gguf"},
              {"family", model.architecture}, {"families", Json::array({model.architecture})},
              {"parameter_size", ""},         {"quantization_level", ""}};
}

}  // namespace

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() % 1000000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(ns));
  return buf;
}

PreparedRequest prepare_ollama(OllamaEndpoint endpoint, const std::string& body_text, const ModelInfo& model,
                               const chat::ChatTemplate& chat_template, const ProtocolLimits& limits) {
  const Json body = parse_request_body(body_text);
  check_model(body, model);
  refuse_unsupported(body);
  PreparedRequest prepared;
  prepared.stream = stream_of(body);
  GenerationRequest& g = prepared.generation;
  int max_tokens = endpoint == OllamaEndpoint::chat ? limits.default_chat_max_tokens : limits.max_tokens_limit;
  max_tokens = std::min(max_tokens, limits.max_tokens_limit);
  apply_options(body, g, max_tokens, model, limits);
  g.max_tokens = max_tokens;
  apply_format(body, g.sampling);

  bool raw = false;
  if (const Json* r = field(body, "raw")) {
    if (!r->is_boolean()) wrong_type("raw", "a boolean");
    raw = r->get<bool>();
  }
  if (endpoint == OllamaEndpoint::generate && raw) {
    g.prompt = string_field(body, "prompt", "prompt");  // the prompt as given, no template
    g.templated = false;
  } else {
    Json messages = endpoint == OllamaEndpoint::chat ? chat_messages(body) : generate_messages(body);
    Json extra = Json::object();
    if (const Json* tools = field(body, "tools"); tools && endpoint == OllamaEndpoint::chat) {
      if (!tools->is_array()) wrong_type("tools", "an array of objects");
      for (size_t i = 0; i < tools->size(); ++i) check_openai_tool((*tools)[i], "tools[" + std::to_string(i) + "]");
      if (!tools->empty()) {
        if (g.sampling.constrain_json) {
          throw invalid_request(
              "'format' and 'tools' cannot be combined: an answer constrained to JSON cannot hold the model's "
              "tool-call markup",
              "format", "invalid_value");
        }
        prepared.tool_format = require_tool_format(chat_template, "tools");
        extra["tools"] = *tools;
        g.render_special = true;
      }
    } else if (tools) {
      throw invalid_request("'tools' is read on /api/chat only", "tools", "unsupported_field");
    }
    render_chat_prompt(chat_template, messages, extra, g);
  }
  prepared.writer = std::make_unique<OllamaWriter>(
      endpoint, field(body, "model") ? body["model"].get<std::string>() : body["name"].get<std::string>());
  return prepared;
}

std::optional<Json> ollama_load_reply(OllamaEndpoint endpoint, const std::string& body_text, const ModelInfo& model) {
  Json body = Json::parse(body_text, nullptr, false);
  if (!body.is_object()) return std::nullopt;  // prepare_ollama says what is wrong
  bool empty = false;
  if (endpoint == OllamaEndpoint::chat) {
    auto m = body.find("messages");
    empty = m == body.end() || m->is_null() || (m->is_array() && m->empty());
  } else {
    auto p = body.find("prompt");
    empty = p == body.end() || p->is_null() || (p->is_string() && p->get_ref<const std::string&>().empty());
  }
  if (!empty) return std::nullopt;
  check_model(body, model);
  Json out = {{"model", body.contains("model") ? body["model"] : Json(model.id)}, {"created_at", rfc3339_now()}};
  if (endpoint == OllamaEndpoint::chat) {
    out["message"] = Json{{"role", "assistant"}, {"content", ""}};
  } else {
    out["response"] = "";
  }
  out["done"] = true;
  out["done_reason"] = "load";
  return out;
}

Json ollama_tags(const ModelInfo& model, bool running) {
  Json entry = {{"name", model.id}, {"model", model.id}, {"modified_at", rfc3339_now()},
                {"size", 0},        {"digest", ""},      {"details", details(model)}};
  if (running) {
    entry.erase("modified_at");
    entry["expires_at"] = "9999-12-31T23:59:59Z";  // loaded while the server runs
    entry["size_vram"] = 0;
    entry["context_length"] = model.context_length;
  }
  return Json{{"models", Json::array({entry})}};
}

Json ollama_show(const std::string& body_text, const ModelInfo& model, const chat::ChatTemplate& chat_template) {
  const Json body = parse_request_body(body_text);
  check_model(body, model);
  if (const Json* v = field(body, "verbose"); v && !v->is_boolean()) wrong_type("verbose", "a boolean");
  Json capabilities = Json::array({"completion"});
  if (!chat_template.is_fallback() &&
      chat::detect_tool_call_format(chat_template.source()) != chat::ToolCallFormat::none)
    capabilities.push_back("tools");
  Json info = {{"general.architecture", model.architecture}};
  if (!model.architecture.empty()) info[model.architecture + ".context_length"] = model.context_length;
  return Json{{"license", ""},
              {"modelfile", ""},
              {"parameters", ""},
              {"template", chat_template.source()},
              {"details", details(model)},
              {"model_info", info},
              {"capabilities", capabilities},
              {"modified_at", rfc3339_now()}};
}

}  // namespace clusterctl::server
