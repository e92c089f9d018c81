#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace clusterctl::server {

// Finds stop strings in streamed text that arrives in arbitrary pieces. Text that could
// still turn out to be the start of a stop string is held back, so a client never sees
// part of a stop string; the text before the first match is released, the rest dropped.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds a piece; returns the text that is now safe to send.
  std::string feed(std::string_view piece);
  bool matched() const { return matched_; }
  // The stop string that matched (the earliest; Anthropic's stop_sequence reports it).
  const std::string& matched_string() const { return matched_string_; }
  // At the end of generation: the held-back text (nothing once a stop string matched).
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool matched_ = false;
  std::string matched_string_;
};

}  // namespace clusterctl::server
