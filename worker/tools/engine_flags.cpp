#include "worker/tools/engine_flags.h"

#include <cstdlib>
#include <random>

#include "collectives/network_address.h"
#include "worker/common/error.h"
#include "worker/kernels/kernels.h"

namespace clusterctl::cli {

void add_engine_flags(po::options_description& opts) {
  opts.add_options()("threads,t", po::value<int>()->default_value(0),
                     "compute threads (0: physical cores; performance cores on Apple silicon)")(
      "ctx,c", po::value<int64_t>()->default_value(0),
      "context length in tokens (0: the model's, at most 4096; never more than the model's)")(
      "batch,b", po::value<int64_t>()->default_value(512), "tokens per forward pass when processing a prompt")(
      "kv-type", po::value<std::string>()->default_value("f16"), "KV cache type: f16 or f32")(
      "isa", po::value<std::string>()->default_value("auto"),
      "CPU kernels: auto (the best this CPU has), avx512, avx2, neon or scalar; to compare paths or to "
      "measure what a machine without the best one would get");
}

model::EngineOptions engine_options(const po::variables_map& vm) {
  model::EngineOptions o;
  o.threads = vm["threads"].as<int>();
  o.n_ctx = vm["ctx"].as<int64_t>();
  o.max_batch = vm["batch"].as<int64_t>();
  const std::string kv = vm["kv-type"].as<std::string>();
  if (o.threads < 0) throw Error("--threads must be 0 (physical cores) or more");
  if (o.n_ctx < 0) throw Error("--ctx must be 0 (the model's) or a positive number of tokens");
  if (o.max_batch < 1) throw Error("--batch must be at least 1");
  if (kv == "f16")
    o.kv_type = gguf::GgmlType::F16;
  else if (kv == "f32")
    o.kv_type = gguf::GgmlType::F32;
  else
    throw Error("--kv-type '" + kv + "' is not supported: use f16 or f32");
  // Set here, before any model loads: loading lays weights out for the active kernels.
  if (const std::string isa = vm["isa"].as<std::string>(); isa != "auto") {
    const auto chosen = kernels::isa_from_name(isa);
    if (!chosen) throw Error("--isa '" + isa + "' is not known: use auto, avx512, avx2, neon or scalar");
    kernels::set_active_isa(*chosen);
  }
  return o;
}

void add_job_flags(po::options_description& opts) {
  add_layout_flag(opts);
  opts.add_options()("step-timeout", po::value<double>()->default_value(300),
                     "seconds a rank may wait for the others within a step, or for rank 0's next step (an idle "
                     "server sends a heartbeat every quarter of this), before the job ends with a message (a rank "
                     "hung or cut off from the network); 0: wait forever");
  opts.add_options()("heartbeat-link", po::value<std::string>()->default_value(""),
                     "the cluster link's network (e.g. 10.0.0.0/24): a serving job's ranks send each other a "
                     "heartbeat over it, so a node whose link goes down is noticed within --node-timeout "
                     "(clusterctl up sets it); empty: no heartbeat");
  opts.add_options()("heartbeat-interval", po::value<double>()->default_value(1),
                     "seconds between heartbeats (with --heartbeat-link)");
  opts.add_options()("node-timeout", po::value<double>()->default_value(6),
                     "seconds without a node's heartbeat before it is lost: the API answers 503 naming it, its "
                     "requests fail, and the job ends (with --heartbeat-link)");
  opts.add_options()("allreduce", po::value<std::string>()->default_value("auto"),
                     "all-reduce algorithm: auto (the table `clusterctl bench net` wrote, else MPI_Allreduce for "
                     "the exact format), mpi, one-shot, recursive-doubling or ring");
  opts.add_options()("transport", po::value<std::string>()->default_value("auto"),
                     "what carries our all-reduce algorithms: auto (the table `clusterctl bench net` wrote, else "
                     "mpi), mpi (MPI point-to-point) or tcp (the backend's own sockets on the cluster link)");
  opts.add_options()("tcp-interface", po::value<std::string>()->default_value(""),
                     "the tcp transport's network: CIDRs or interface names, comma-separated (10.77.2.0/24, tb0); "
                     "default $CLUSTERCTL_TCP_IF, else the cluster link mpirun was pinned to (btl_tcp_if_include), "
                     "else this host's first non-loopback address");
  opts.add_options()("tcp-timeout", po::value<std::string>()->default_value("5"),
                     "seconds the ranks may take to connect the tcp transport's mesh before the job ends, naming "
                     "the ranks and addresses that did not connect");
  opts.add_options()("wire-format", po::value<std::string>()->default_value("double"),
                     "how partial sums travel: double (exact: N ranks give 1 rank's tokens), float32, bf16 or q8 "
                     "(blocks of 32 int8 with a float scale)");
  opts.add_options()("overlap-prompt", po::value<std::string>()->default_value("auto"),
                     "on: a prompt's all-reduces go in pieces of tokens, each piece's sums travelling while the next "
                     "piece's matmul computes (the same bits); off: one all-reduce after the whole matmul; auto: on "
                     "where they cross a link (ranks on several nodes, or an emulated link)");
  opts.add_options()("allreduce-table", po::value<std::string>()->default_value(""),
                     "the all-reduce selection table (default $CLUSTERCTL_NET_TABLE, else "
                     "~/.config/clusterctl/allreduce-table where it exists)");
  opts.add_options()("link-type", po::value<std::string>()->default_value(""),
                     "this node's cluster link type as the cluster file names it (thunderbolt, ethernet), shown "
                     "on the web page's dashboard (clusterctl up sets it)");
  opts.add_options()("emulate-link", po::value<std::string>()->default_value(""),
                     "EMULATION: hold every all-reduce message back as a link would, e.g. "
                     "latency=300us,bandwidth=10gbit[,jitter=20us] (ranks on one machine or kernel)");
  opts.add_options()("ranks-on-machine", po::value<int>()->default_value(0),
                     "the ranks sharing this machine's cores, this one included (clusterctl up and --ranks set it; "
                     "0: mpirun's count of this host's ranks): where ranks x threads exceed the cores, a rank "
                     "waiting in a collective blocks at once instead of polling a core another rank needs");
}

void add_layout_flag(po::options_description& opts) {
  opts.add_options()("layout", po::value<std::string>(),
                     "split-attention (each rank its attention heads: two all-reduces per layer) or "
                     "replicated-attention (every rank all heads, the whole attention weights and KV cache: one "
                     "all-reduce per layer, for slow links); default: a shard directory's own, else split-attention");
}

std::optional<model::Layout> layout_flag(const po::variables_map& vm) {
  if (!vm.count("layout")) return std::nullopt;
  const std::string text = vm["layout"].as<std::string>();
  const auto l = model::parse_layout(text);
  if (!l) throw Error("--layout '" + text + "' is not known: use split-attention or replicated-attention");
  return l;
}

collectives::CommOptions comm_options(int argc, char** argv) {
  collectives::CommOptions o;
  std::string tcp_timeout;
  std::string ranks_on_machine, threads;
  const std::pair<const char*, std::string*> flags[] = {{"--allreduce", &o.algorithm},
                                                        {"--transport", &o.transport},
                                                        {"--tcp-interface", &o.tcp_interface},
                                                        {"--tcp-timeout", &tcp_timeout},
                                                        {"--wire-format", &o.wire_format},
                                                        {"--allreduce-table", &o.selection_path},
                                                        {"--emulate-link", &o.emulate_link},
                                                        {"--overlap-prompt", &o.overlap},
                                                        {"--ranks-on-machine", &ranks_on_machine},
                                                        {"--threads", &threads},
                                                        {"-t", &threads}};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    for (auto [name, out] : flags) {
      const std::string_view n = name;
      if (a == n) {
        if (i + 1 >= argc) throw Error(std::string(name) + " needs a value");
        *out = argv[++i];
      } else if (a.size() > n.size() && a.substr(0, n.size()) == n && a[n.size()] == '=') {
        *out = std::string(a.substr(n.size() + 1));
      }
    }
  }
  if (!tcp_timeout.empty()) {
    char* end = nullptr;
    o.tcp_timeout_s = std::strtod(tcp_timeout.c_str(), &end);
    if (*end || !(o.tcp_timeout_s >= 0.1 && o.tcp_timeout_s <= 600))
      throw Error("--tcp-timeout " + tcp_timeout + ": give the seconds the ranks may take to connect, 0.1 to 600");
  }
  if (!collectives::known_overlap_mode(o.overlap))
    throw Error("--overlap-prompt " + o.overlap + ": use auto, on or off");
  if (!o.tcp_interface.empty())
    if (const std::string e = collectives::interface_spec_error(o.tcp_interface); !e.empty())
      throw Error("--tcp-interface: " + e + "; give CIDRs or interface names, comma-separated (10.77.2.0/24, tb0)");
  // A rank computes on --threads (0: the engine's default).
  int compute_threads = std::atoi(threads.c_str());
  if (compute_threads <= 0) compute_threads = kernels::default_thread_count();
  o.core_share = collectives::this_machine_share(std::atoi(ranks_on_machine.c_str()), compute_threads);
  return o;
}

double step_timeout_seconds(const po::variables_map& vm) {
  const double s = vm["step-timeout"].as<double>();
  if (!(s >= 0)) throw Error("--step-timeout must be 0 (wait forever) or a positive number of seconds");
  return s;
}

HeartbeatFlags heartbeat_flags(const po::variables_map& vm) {
  HeartbeatFlags f;
  f.link_cidr = vm["heartbeat-link"].as<std::string>();
  f.interval_s = vm["heartbeat-interval"].as<double>();
  f.timeout_s = vm["node-timeout"].as<double>();
  if (!(f.interval_s >= 0.05 && f.interval_s <= 60))
    throw Error("--heartbeat-interval must be between 0.05 and 60 seconds");
  if (!(f.timeout_s >= 2 * f.interval_s && f.timeout_s <= 3600))
    throw Error("--node-timeout must be at least twice --heartbeat-interval and at most 3600 seconds");
  return f;
}

}  // namespace clusterctl::cli

namespace clusterctl::cli {

void add_generation_flags(po::options_description& opts) {
  opts.add_options()("n-predict,n", po::value<int64_t>()->default_value(kGenerateTokens), "tokens to generate at most")(
      "temp", po::value<float>()->default_value(0.8f), "temperature (0: greedy)")(
      "top-k", po::value<int>()->default_value(40), "keep the k most likely tokens (0: off)")(
      "top-p", po::value<float>()->default_value(0.95f), "keep the smallest set with this total probability (1: off)")(
      "min-p", po::value<float>()->default_value(0.05f),
      "drop tokens less likely than this times the top one (0: off)")(
      "repeat-penalty", po::value<float>()->default_value(1.0f), "penalise recent tokens (1: off)")(
      "presence-penalty", po::value<float>()->default_value(0.0f), "subtract from recent tokens' logits (0: off)")(
      "repeat-last-n", po::value<int>()->default_value(64), "recent tokens the penalties look at")(
      "seed,s", po::value<uint64_t>(), "random seed (default: random)")(
      "stop", po::value<std::vector<std::string>>()->composing(), "stop when the text contains this (repeatable)")(
      "json", po::bool_switch(), "print prompt ids, generated ids, text and timings as JSON instead of streaming");
  add_draft_flags(opts);
}

void add_draft_flags(po::options_description& opts) {
  opts.add_options()("draft", po::value<std::string>()->default_value(""),
                     "speculative decoding: 'ngram' (prompt lookup) or a draft model's GGUF file with the model's "
                     "vocabulary (run on rank 0)")("draft-max", po::value<int>()->default_value(8),
                                                   "speculative decoding: most tokens drafted per round")(
      "draft-min", po::value<int>()->default_value(0),
      "speculative decoding: fewest tokens drafted per round (k adapts in between to the acceptance rate)");
}

DraftFlags draft_flags(const po::variables_map& vm) {
  DraftFlags d;
  d.spec = vm["draft"].as<std::string>();
  d.min = vm["draft-min"].as<int>();
  d.max = vm["draft-max"].as<int>();
  if (d.min < 0 || d.max < d.min || d.max > 64)
    throw Error("--draft-min " + std::to_string(d.min) + " and --draft-max " + std::to_string(d.max) +
                " do not make a range: give 0 <= --draft-min <= --draft-max <= 64");
  if (d.enabled() && d.max == 0) throw Error("--draft-max 0 drafts nothing: give 1 or more, or leave out --draft");
  return d;
}

sampling::SamplerParams sampler_params(const po::variables_map& vm) {
  if (vm["n-predict"].as<int64_t>() < 0) throw Error("-n must be 0 or more");
  sampling::SamplerParams sp;
  sp.temperature = vm["temp"].as<float>();
  sp.top_k = vm["top-k"].as<int>();
  sp.top_p = vm["top-p"].as<float>();
  sp.min_p = vm["min-p"].as<float>();
  sp.repeat_penalty = vm["repeat-penalty"].as<float>();
  sp.presence_penalty = vm["presence-penalty"].as<float>();
  sp.repeat_last_n = vm["repeat-last-n"].as<int>();
  sp.seed = vm.count("seed") ? vm["seed"].as<uint64_t>() : std::random_device{}();
  return sp;
}

}  // namespace clusterctl::cli
