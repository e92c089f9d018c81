#pragma once
// The tools a request offers the model, checked once for every dialect: their OpenAI shape (what
// chat templates read as `tools`), the tool choice, and the model's tool-call format.
#include <nlohmann/json.hpp>
#include <string>

#include "worker/chat/chat_template.h"
#include "worker/chat/tool_calls.h"
#include "worker/server/generation_service.h"

namespace clusterctl::server {

struct ToolOffer {
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();  // [{type: function, function: {...}}]
  chat::ToolCallFormat format = chat::ToolCallFormat::none;
  bool parallel = true;  // more than one call per answer
  bool active() const { return !tools.empty(); }
};

// Checks one OpenAI-shape tool {"type": "function", "function": {"name", "description"?,
// "parameters"?}} (`param` names it in the 400).
void check_openai_tool(const nlohmann::ordered_json& tool, const std::string& param);

// The model's tool-call format, or a 400 naming the families that have one (`param`: the field).
chat::ToolCallFormat require_tool_format(const chat::ChatTemplate& chat_template, const std::string& param);

// Renders OpenAI-shaped `messages` (and `extra`, e.g. the offered tools) with the chat template
// into `g`: the prompt, templated, with the template's implied stop strings; a refusal by the
// template is a 400 naming `messages`.
void render_chat_prompt(const chat::ChatTemplate& chat_template, const nlohmann::ordered_json& messages,
                        const nlohmann::ordered_json& extra, GenerationRequest& g);

// OpenAI's `tools`, `tool_choice` ("none", "auto"; "required" and a named function are refused:
// forcing a call needs constrained sampling) and `parallel_tool_calls`.
ToolOffer openai_tool_offer(const nlohmann::ordered_json& body, const chat::ChatTemplate& chat_template);

}  // namespace clusterctl::server
