#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "worker/chat/jinja_template.h"

namespace clusterctl::chat {

// Turns an OpenAI-style message list into the prompt text a model was trained on.
//
// A model's GGUF file carries its Hugging Face template (`tokenizer.chat_template`);
// when it has none, the documented fallback (docs/api.md) is a plain transcript:
//
//   {bos}System text\n\nUser: question\nAssistant: answer\nUser: question\nAssistant:
//
// chosen over ChatML because a model without a template is usually a base model
// that has never seen ChatML's special tokens but has seen transcripts like this.
class ChatTemplate {
 public:
  // `source` = the model's tokenizer.chat_template, or nullopt/empty for the fallback.
  ChatTemplate(std::optional<std::string> source, std::string bos_token, std::string eos_token);

  // `messages`: [{"role": "...", "content": "..."}, ...]. Content given as a list of
  // parts ([{"type":"text","text":...}]) is joined to one string first. `extra`
  // (a JSON object) adds variables such as "tools" or "date_string".
  // Throws TemplateError when the template rejects the conversation.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  bool is_fallback() const { return fallback_; }
  // Stop strings the prompt format implies beyond the model's end-of-turn token
  // ("\nUser:" for the fallback, so a base model does not write the user's turn).
  const std::vector<std::string>& implied_stop_strings() const { return implied_stops_; }
  const std::string& source() const { return template_.source(); }

  static const char* fallback_source();

 private:
  JinjaTemplate template_;
  std::string bos_token_;
  std::string eos_token_;
  bool fallback_;
  std::vector<std::string> implied_stops_;
};

}  // namespace clusterctl::chat
