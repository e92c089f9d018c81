// `clusterctl run MODEL "PROMPT"` on this machine: load the GGUF file, generate, stream the text
// (or print it with the ids and timings as JSON). The controller's run verb
// (controller/cli/run.cpp) comes here when no running cluster serves MODEL.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "worker/common/error.h"
#include "worker/model/generate.h"
#include "worker/parallel/step_protocol.h"
#include "worker/speculative/speculative_decode.h"
#include "worker/tokenizer/stream_decoder.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"

namespace clusterctl::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int run_local(const po::variables_map& vm) {
  const bool json = vm["json"].as<bool>();
  const int64_t n_predict = vm["n-predict"].as<int64_t>();
  const sampling::SamplerParams sp = sampler_params(vm);
  std::vector<std::string> stops;
  if (vm.count("stop")) stops = vm["stop"].as<std::vector<std::string>>();

  auto load_t0 = std::chrono::steady_clock::now();
  gguf::GgufFile file(vm["model"].as<std::string>());
  auto tok = tokenizer::Tokenizer::from_gguf(file);
  if (!tok->warning().empty() && !json) std::cerr << "warning: " << tok->warning() << "\n";
  auto comm = collectives::make_local_communicator();
  model::Engine engine(file, *comm, engine_options(vm));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_t0).count();
  sampling::Sampler sampler(engine.hparams().n_vocab, sp);
  const DraftFlags draft = draft_flags(vm);
  std::unique_ptr<speculative::Drafter> drafter;
  if (draft.enabled()) {
    drafter = speculative::open_drafter(draft.spec, {file.get_string_array("tokenizer.ggml.tokens"), engine.n_ctx(), 1,
                                                     engine.threads(), &engine.pool()});
    if (!speculative::speculation_keeps(sp)) {
      std::cerr << "note: no speculative decoding: --repeat-penalty and --presence-penalty need every token of the "
                   "text before the next one\n";
      drafter.reset();
    }
  }

  model::GenerateRequest req;
  req.prompt = tok->tokenize(vm["prompt"].as<std::string>(), true, true);
  if (req.prompt.empty()) throw Error("the prompt gives no tokens and the model adds no BOS: give a non-empty prompt");
  if (static_cast<int64_t>(req.prompt.size()) >= engine.n_ctx())
    throw Error("the prompt has " + std::to_string(req.prompt.size()) + " tokens but the context holds " +
                std::to_string(engine.n_ctx()) + "; shorten the prompt or raise --ctx");
  req.max_tokens = n_predict;
  for (auto id : {tok->vocab().eos(), tok->vocab().eot()})
    if (id >= 0) req.stop_tokens.push_back(id);

  tokenizer::StreamDecoder decoder(*tok);
  sampling::StopStrings stop_strings(stops);
  std::string text;
  auto emit = [&](const std::string& s) {
    text += s;
    if (!json) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    }
  };
  if (!json) emit(tok->detokenize(req.prompt));
  text.clear();
  model::GenerateStats stats;
  const auto generate_t0 = Clock::now();
  double first_token_s = -1;
  auto on_token = [&](int32_t id) {
    if (first_token_s < 0) first_token_s = seconds_since(generate_t0);
    emit(stop_strings.feed(decoder.push(id)));
    return !stop_strings.stopped();
  };
  std::vector<int32_t> generated;
  speculative::SpecStats spec;
  if (drafter) {
    // The same prompt step and decode kernels as model::generate, through the step protocol.
    parallel::StepLeader leader(engine, sampler);
    speculative::SpecRequest sreq{
        req.prompt,      -1,       std::min<int64_t>(n_predict, engine.n_ctx() - req.prompt.size()),
        req.stop_tokens, req.slot, sp.greedy()};
    for (int32_t t : req.prompt) sampler.accept(t);
    if (sreq.budget > 0) sreq.first = leader.step(req.prompt, 0, req.slot, req.slot);
    stats.prompt_tokens = static_cast<int64_t>(req.prompt.size());
    stats.prompt_seconds = seconds_since(generate_t0);
    const auto t0 = Clock::now();
    speculative::DraftLength length(draft.min, draft.max);
    generated = speculative::decode_speculative(leader, *drafter, length, sampler, sreq, on_token, &spec);
    stats.generated = static_cast<int64_t>(generated.size());
    stats.generate_seconds = seconds_since(t0);
  } else {
    generated = model::generate(engine, sampler, req, on_token, &stats);
  }
  if (!stop_strings.stopped()) emit(stop_strings.feed(decoder.finish()) + stop_strings.flush());

  if (json) {
    nlohmann::json j;
    j["prompt_ids"] = req.prompt;
    j["generated_ids"] = generated;
    j["text"] = text;
    j["seed"] = sp.seed;
    j["threads"] = engine.threads();
    j["n_ctx"] = engine.n_ctx();
    j["timings"] = {
        {"load_s", load_s},
        {"prompt_tokens", stats.prompt_tokens},
        {"prompt_s", stats.prompt_seconds},
        {"prompt_tokens_per_s", stats.prompt_seconds > 0 ? stats.prompt_tokens / stats.prompt_seconds : 0},
        {"time_to_first_token_s", std::max(first_token_s, 0.0)},
        {"generated_tokens", stats.generated},
        {"generate_s", stats.generate_seconds},
        {"generate_tokens_per_s", stats.generate_seconds > 0 ? stats.generated / stats.generate_seconds : 0}};
    if (drafter)
      j["speculative"] = {{"draft", draft.spec},
                          {"rounds", spec.rounds},
                          {"drafted", spec.drafted},
                          {"accepted", spec.accepted},
                          {"acceptance_rate", spec.acceptance_rate()},
                          {"tokens_per_round", spec.tokens_per_round()}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("\n");
    std::fprintf(stderr,
                 "\nprompt: %lld tokens in %.3f s (%.1f tok/s); generated: %lld tokens in %.3f s (%.1f tok/s)\n",
                 static_cast<long long>(stats.prompt_tokens), stats.prompt_seconds,
                 stats.prompt_seconds > 0 ? stats.prompt_tokens / stats.prompt_seconds : 0.0,
                 static_cast<long long>(stats.generated), stats.generate_seconds,
                 stats.generate_seconds > 0 ? stats.generated / stats.generate_seconds : 0.0);
    if (drafter)
      std::fprintf(stderr, "speculative (%s): %.2f tokens per round, %.0f %% of %lld drafted tokens accepted\n",
                   draft.spec.c_str(), spec.tokens_per_round(), 100 * spec.acceptance_rate(),
                   static_cast<long long>(spec.drafted));
  }
  return 0;
}

}  // namespace clusterctl::cli
