#include "controller/cli/command.h"
#include "worker/tools/engine_verbs.h"

namespace clusterctl::cli {

// The controller's own verbs; the engine's on this machine are in worker/tools/engine_verbs.h.
// run, chat, bench and serve start here: they may go to a running cluster or to mpirun (--ranks).
int run_main(int argc, char** argv);
int bench_command(int argc, char** argv);
int serve_command(int argc, char** argv);
int config_main(int argc, char** argv);
int doctor_main(int argc, char** argv);
int chat_main(int argc, char** argv);
int bench_serve_main(int argc, char** argv);
int plan_main(int argc, char** argv);
int up_main(int argc, char** argv);
int status_main(int argc, char** argv);
int logs_main(int argc, char** argv);
int down_main(int argc, char** argv);
int pull_main(int argc, char** argv);
int supervise_main(int argc, char** argv);

std::span<const Command> commands() {
  static const Command kCommands[] = {
      {"inspect", "show a GGUF model's architecture, hyperparameters and tensors", inspect_main},
      {"tokenize", "turn text into token ids with a model's tokenizer", tokenize_main},
      {"run", "generate text from a prompt, streamed: on the running cluster serving the model, else here", run_main},
      {"chat", "interactive chat with a model: on the running cluster serving it, else here", chat_main},
      {"perplexity", "score a text file as llama-perplexity does", perplexity_main},
      {"bench", "prompt and generation tokens/s, as llama-bench, with the bandwidth bound", bench_command},
      {"bench-serve", "load an OpenAI-compatible server with concurrent streams: tokens/s, time to first token",
       bench_serve_main},
      {"config", "check a cluster file: 'config validate CLUSTER.yaml'", config_main},
      {"doctor", "check every node of a cluster file: ssh, OS, worker, memory, link, reachability", doctor_main},
      {"pull", "download a GGUF model from Hugging Face: 'pull unsloth/Qwen3-8B-GGUF:Q4_K_M'", pull_main},
      {"model", "make model files: 'model synth' writes a random-weight model", model_main},
      {"shard", "cut a model into one GGUF per rank: 'shard MODEL.gguf --ranks N --out DIR'", shard_main},
      {"serve", "OpenAI-compatible HTTP API and web chat for a model on this machine", serve_command},
      {"plan", "what 'up' would do, starting nothing: checks, split, each rank's slice and shard, memory per node",
       plan_main},
      {"up", "start a cluster from its cluster file: shards to the nodes, mpirun, wait until it answers", up_main},
      {"status", "nodes, ranks, split, link, model, endpoint, uptime and tokens/s of a running cluster", status_main},
      {"logs", "the running cluster's log from its head node (all ranks, or one node's)", logs_main},
      {"down", "stop a running cluster on every node and check that nothing of it is left", down_main},
      {"supervise",
       "restart a cluster over the nodes that remain when it fails (started by up for 'restart: on-failure')",
       supervise_main},
  };
  return kCommands;
}

}  // namespace clusterctl::cli
