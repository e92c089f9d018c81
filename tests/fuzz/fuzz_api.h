#pragma once
// Which API a fuzz run aims at, from CLUSTERCTL_FUZZ_API (tests/fuzz/run_api.sh sets it):
//   openai     the input is an OpenAI request body (/v1/chat/completions, /v1/completions)
//   ollama     an Ollama request body (/api/chat, /api/generate)
//   anthropic  an Anthropic request body (/v1/messages)
//   http       raw bytes on a connection: the HTTP/1.1 parser and the session's checks
//   unset/all  every one of them on each input (what CI's short runs do)
// A run aimed at one API spends all its executions there, so 10 minutes reach deeper than a
// tenth of a run spread over everything.
#include <cstdio>
#include <cstdlib>
#include <string>

namespace clusterctl::fuzz {

enum class FuzzApi { all, openai, ollama, anthropic, http };

inline FuzzApi fuzz_api_from_env() {
  const char* v = std::getenv("CLUSTERCTL_FUZZ_API");
  const std::string s = v ? v : "";
  if (s.empty() || s == "all") return FuzzApi::all;
  if (s == "openai") return FuzzApi::openai;
  if (s == "ollama") return FuzzApi::ollama;
  if (s == "anthropic") return FuzzApi::anthropic;
  if (s == "http") return FuzzApi::http;
  std::fprintf(stderr, "CLUSTERCTL_FUZZ_API=%s is not an API; use openai, ollama, anthropic, http or all\n", v);
  std::exit(2);
}

}  // namespace clusterctl::fuzz
