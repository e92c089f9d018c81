#pragma once
// `clusterctl chat`'s conversation partner: one answer at a time, streamed to stdout. The engine
// on this machine is one (here); a running cluster or --endpoint is another (the controller's).
#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "worker/server/engine_generation_service.h"

namespace clusterctl::cli {

struct ChatSettings {
  int max_tokens = 512;
  float temperature = 0.8f;
  float top_p = 0.95f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
};

struct Answer {
  std::string text;
  int tokens = 0;
  double time_to_first_token_s = 0;
  double total_s = 0;
  std::string finish_reason;
  bool stopped = false;  // by Ctrl-C
};

class ChatBackend {
 public:
  using Json = nlohmann::ordered_json;
  virtual ~ChatBackend() = default;
  virtual std::string describe() const = 0;
  // Streams the answer to `messages` to stdout.
  virtual Answer answer(const Json& messages, const ChatSettings& s) = 0;
};

// One piece of an answer to stdout, at once.
void print_piece(std::string_view piece);

// The engine's generation service on this machine, one sequence at a time (all a chat needs),
// with the model's chat template. An answer stops when `interrupts` (the verb's Ctrl-C count)
// is above zero.
std::unique_ptr<ChatBackend> open_local_chat(server::EngineServiceOptions options, const std::atomic<int>& interrupts);

}  // namespace clusterctl::cli
