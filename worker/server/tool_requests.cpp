#include "worker/server/tool_requests.h"

#include "worker/server/openai_protocol.h"

namespace clusterctl::server {

namespace {

std::string shown(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  return s.size() > 64 ? s.substr(0, 64) + "..." : s;
}

}  // namespace

void check_openai_tool(const Json& tool, const std::string& param) {
  if (!tool.is_object())
    throw invalid_request(param + " must be an object {\"type\": \"function\", \"function\": {...}}", param,
                          "invalid_type");
  auto type = tool.find("type");
  if (type == tool.end() || *type != "function") {
    throw invalid_request(param + ".type must be \"function\"", param + ".type", "invalid_value");
  }
  auto fn = tool.find("function");
  if (fn == tool.end() || !fn->is_object()) {
    throw invalid_request(param + ".function must be an object {\"name\", \"description\", \"parameters\"}",
                          param + ".function", "invalid_type");
  }
  auto name = fn->find("name");
  if (name == fn->end() || !name->is_string() || name->get<std::string>().empty()) {
    throw invalid_request(param + ".function.name must be a non-empty string", param + ".function.name",
                          "invalid_value");
  }
  if (auto d = fn->find("description"); d != fn->end() && !d->is_null() && !d->is_string()) {
    throw invalid_request(param + ".function.description must be a string", param + ".function.description",
                          "invalid_type");
  }
  if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null() && !p->is_object()) {
    throw invalid_request(param + ".function.parameters must be a JSON Schema object", param + ".function.parameters",
                          "invalid_type");
  }
}

chat::ToolCallFormat require_tool_format(const chat::ChatTemplate& chat_template, const std::string& param) {
  const chat::ToolCallFormat format =
      chat_template.is_fallback() ? chat::ToolCallFormat::none : chat::detect_tool_call_format(chat_template.source());
  if (format == chat::ToolCallFormat::none) {
    throw invalid_request(
        std::string("this model cannot be offered tools: ") +
            (chat_template.is_fallback() ? "it has no chat template (tokenizer.chat_template)"
                                         : "its chat template writes no tool-call format clusterctl reads") +
            "; tool calls work with the templates of Llama 3.x, Qwen 2.5/3 and Hermes, DeepSeek R1/V3, Kimi-K2 "
            "and Mistral (docs/api.md); leave out '" +
            param + "' for this model",
        param, "tools_not_supported");
  }
  return format;
}

void render_chat_prompt(const chat::ChatTemplate& chat_template, const Json& messages, const Json& extra,
                        GenerationRequest& g) {
  try {
    g.prompt = chat_template.render(messages, true, extra);
  } catch (const std::exception& e) {
    throw invalid_request(std::string("the model's chat template rejected the messages: ") + e.what(), "messages",
                          "invalid_messages");
  }
  g.templated = true;
  for (const auto& s : chat_template.implied_stop_strings()) g.stop.push_back(s);
}

ToolOffer openai_tool_offer(const Json& body, const chat::ChatTemplate& chat_template) {
  ToolOffer offer;
  auto tools = body.find("tools");
  const bool has_tools = tools != body.end() && !tools->is_null();
  if (has_tools) {
    if (!tools->is_array()) throw invalid_request("'tools' must be an array of objects", "tools", "invalid_type");
    for (size_t i = 0; i < tools->size(); ++i) check_openai_tool((*tools)[i], "tools[" + std::to_string(i) + "]");
  }
  if (auto p = body.find("parallel_tool_calls"); p != body.end() && !p->is_null()) {
    if (!p->is_boolean())
      throw invalid_request("'parallel_tool_calls' must be a boolean", "parallel_tool_calls", "invalid_type");
    offer.parallel = p->get<bool>();
  }
  std::string choice = "auto";
  if (auto c = body.find("tool_choice"); c != body.end() && !c->is_null()) {
    if (c->is_string()) {
      choice = c->get<std::string>();
    } else if (c->is_object()) {
      choice = "named";
    } else {
      throw invalid_request("'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", ...}",
                            "tool_choice", "invalid_type");
    }
    if (choice != "none" && choice != "auto" && choice != "required" && choice != "named") {
      throw invalid_request(
          "'tool_choice' must be \"none\", \"auto\", \"required\" or a named function, got " + shown(*c), "tool_choice",
          "invalid_value");
    }
    if (choice == "required" || choice == "named") {
      throw invalid_request("'tool_choice' " + shown(*c) +
                                " is not supported: forcing a tool call needs constrained sampling, which this server "
                                "does not do for tools; use \"auto\" (the model decides) or \"none\"",
                            "tool_choice", "unsupported_value");
    }
  }
  if (!has_tools || tools->empty() || choice == "none") return offer;  // "none": the model is not told of tools
  offer.format = require_tool_format(chat_template, "tools");
  offer.tools = *tools;
  return offer;
}

}  // namespace clusterctl::server
