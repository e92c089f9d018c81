#include "worker/chat/chat_template.h"

#include "worker/chat/tool_calls.h"

namespace clusterctl::chat {

const char* ChatTemplate::fallback_source() {
  return "{{ bos_token }}"
         "{% for message in messages %}"
         "{% if message['role'] == 'system' %}{{ message['content'] | trim }}\n\n"
         "{% elif message['role'] == 'user' %}User: {{ message['content'] | trim }}\n"
         "{% else %}Assistant: {{ message['content'] | trim }}\n"
         "{% endif %}"
         "{% endfor %}"
         "{% if add_generation_prompt %}Assistant:{% endif %}";
}

ChatTemplate::ChatTemplate(std::optional<std::string> source, std::string bos_token, std::string eos_token)
    : template_(source && !source->empty() ? *source : std::string(fallback_source())),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)),
      fallback_(!source || source->empty()) {
  if (fallback_) implied_stops_ = {"\nUser:"};
}

namespace {

nlohmann::ordered_json normalize_message(const nlohmann::ordered_json& message) {
  nlohmann::ordered_json m = message;
  if (m.contains("content") && m["content"].is_array()) {
    std::string text;
    for (const auto& part : m["content"]) {
      if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string()) {
        text += part["text"].get<std::string>();
      }
    }
    m["content"] = text;
  }
  return m;
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra) const {
  nlohmann::ordered_json normalized = nlohmann::ordered_json::array();
  for (const auto& m : messages) normalized.push_back(normalize_message(m));
  nlohmann::ordered_json context = extra.is_object() ? extra : nlohmann::ordered_json::object();
  context["add_generation_prompt"] = add_generation_prompt;
  context["bos_token"] = bos_token_;
  context["eos_token"] = eos_token_;
  context["messages"] = messages_for_template(normalized, false);
  try {
    return template_.render(Value::from_json(context));
  } catch (const TemplateError&) {
    // Some templates apply string filters to every message's content: an assistant's tool calls
    // with null content render there with "" (others print "" where null prints nothing).
    const nlohmann::ordered_json retry = messages_for_template(normalized, true);
    if (retry == context["messages"]) throw;
    context["messages"] = retry;
    return template_.render(Value::from_json(context));
  }
}

}  // namespace clusterctl::chat
