#include "worker/server/sampling_fields.h"

#include <cerrno>
#include <cstdlib>

#include "worker/server/request_fields.h"
#include "worker/server/response_format.h"

namespace clusterctl::server {

namespace {

std::vector<std::pair<int32_t, float>> logit_bias_of(const Json& v, const ModelInfo& model) {
  if (!v.is_object()) wrong_type("logit_bias", "an object mapping token ids (as strings) to biases");
  if (v.size() > kMaxLogitBiasEntries) {
    throw invalid_request("'logit_bias' may hold up to " + std::to_string(kMaxLogitBiasEntries) + " tokens, got " +
                              std::to_string(v.size()),
                          "logit_bias", "invalid_value");
  }
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, bias] : v.items()) {
    const std::string param = "logit_bias." + key.substr(0, 32);
    char* end = nullptr;
    errno = 0;
    const long long id = key.empty() || key.size() > 10 ? -1 : std::strtoll(key.c_str(), &end, 10);
    const bool digits = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
    const long long top = model.n_vocab > 0 ? model.n_vocab - 1 : 0x7fffffffLL;
    if (!digits || errno != 0 || id < 0 || id > top) {
      throw invalid_request("'logit_bias' keys must be token ids between 0 and " + std::to_string(top) + ", got '" +
                                key.substr(0, 32) + "' (POST /tokenize gives a text's ids)",
                            param, "invalid_value");
    }
    if (!bias.is_number()) wrong_type(param, "a number between -100 and 100");
    const double b = bias.get<double>();
    if (!(b >= kLogitBiasMin && b <= kLogitBiasMax)) out_of_range(param, "between -100 and 100", bias);
    out.emplace_back(static_cast<int32_t>(id), static_cast<float>(b));
  }
  return out;
}

}  // namespace

void parse_sampling_fields(const Json& body, Endpoint endpoint, const ModelInfo& model, SamplingParams& sp) {
  const bool chat = endpoint == Endpoint::chat_completions;
  if (const Json* n = field(body, "n")) {
    integer_in(*n, "n", 1, 1,
               "1 (this server makes one choice per request; send several requests, with different seeds, for more)");
  }
  if (const Json* v = field(body, "best_of")) integer_in(*v, "best_of", 1, 1, "1 (one choice per request)");
  if (const Json* v = field(body, "echo")) {
    if (!v->is_boolean()) wrong_type("echo", "a boolean");
    if (v->get<bool>())
      throw invalid_request("'echo' must be false: the prompt is not repeated in answers", "echo", "invalid_value");
  }
  if (field(body, "suffix"))
    throw invalid_request("'suffix' is not supported (no fill-in-the-middle)", "suffix", "invalid_value");

  if (const Json* v = field(body, "top_k")) {
    sp.top_k = static_cast<int>(integer_in(*v, "top_k", 0, kMaxTopK, "an integer of 0 (off) or more"));
  }
  if (const Json* v = field(body, "min_p")) {
    if (!v->is_number()) wrong_type("min_p", "a number");
    const double d = v->get<double>();
    if (!(d >= 0 && d < 1)) out_of_range("min_p", "at least 0 (off) and below 1", *v);
    sp.min_p = static_cast<float>(d);
  }
  sp.frequency_penalty = static_cast<float>(number_in(body, "frequency_penalty", kPenaltyMin, kPenaltyMax, 0));
  sp.presence_penalty = static_cast<float>(number_in(body, "presence_penalty", kPenaltyMin, kPenaltyMax, 0));
  if (const Json* v = field(body, "repetition_penalty")) {
    if (!v->is_number()) wrong_type("repetition_penalty", "a number");
    const double d = v->get<double>();
    if (!(d > 0 && d <= kRepetitionPenaltyMax))
      out_of_range("repetition_penalty", "above 0 and at most 10 (1 = off)", *v);
    sp.repetition_penalty = static_cast<float>(d);
  }
  if (const Json* v = field(body, "logit_bias")) sp.logit_bias = logit_bias_of(*v, model);

  const Json* logprobs = field(body, "logprobs");
  const Json* top = field(body, "top_logprobs");
  if (chat) {
    bool on = false;
    if (logprobs) {
      if (!logprobs->is_boolean()) wrong_type("logprobs", "a boolean (and top_logprobs the count)");
      on = logprobs->get<bool>();
    }
    if (top && !on) {
      throw invalid_request("'top_logprobs' needs 'logprobs': true", "top_logprobs", "invalid_value");
    }
    if (on) {
      sp.logprobs =
          top ? static_cast<int>(integer_in(*top, "top_logprobs", 0, kMaxTopLogprobs, "an integer between 0 and 20"))
              : 0;
    }
  } else {
    if (top)
      throw invalid_request("'top_logprobs' belongs to /v1/chat/completions; here 'logprobs' is the count",
                            "top_logprobs", "invalid_value");
    if (logprobs) {
      sp.logprobs =
          static_cast<int>(integer_in(*logprobs, "logprobs", 0, kMaxCompletionLogprobs, "an integer between 0 and 5"));
    }
  }
  if (const Json* v = field(body, "response_format")) parse_response_format(*v, sp);
}

}  // namespace clusterctl::server
