// `clusterctl model synth --shape NAME --type TYPE --vocab VOCAB.gguf OUT.gguf [--seed S]`:
// writes a random-weight model with the tensor table of a real one (worker/model/synth.h).
#include <algorithm>
#include <cstring>
#include <iostream>
#include <vector>

#include "worker/common/error.h"
#include "worker/model/quantize.h"
#include "worker/model/synth.h"
#include "worker/tools/engine_verbs.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

std::string shape_list() {
  size_t width = 0;  // the longest name and a space: the descriptions line up
  for (const auto& shape : model::synth_shapes()) width = std::max(width, shape.name.size() + 1);
  std::string s;
  for (const auto& shape : model::synth_shapes()) {
    std::string name = shape.name;
    name.resize(width, ' ');
    s += "  " + name + shape.description + "\n";
  }
  return s;
}

std::string type_list() {
  std::string s;
  for (const auto& t : model::synth_types()) s += (s.empty() ? "" : " ") + t.name;
  return s;
}

int synth_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("shape", po::value<std::string>()->required(), "model shape (see the list below)")(
      "type", po::value<std::string>()->required(), ("tensor type or llama-quantize preset: " + type_list()).c_str())(
      "vocab", po::value<std::string>()->default_value(""),
      "GGUF whose tokenizer.ggml.* metadata is copied (shape tiny without it: a built-in byte-level vocabulary)")(
      "out", po::value<std::string>(), "output GGUF file (also the one positional argument)")(
      "seed", po::value<int64_t>()->default_value(1), "random seed, >= 0 (same seed, same file)")(
      "threads", po::value<int>()->default_value(0), "threads (0: the physical cores)")(
      "pure", po::bool_switch(), "every matrix in TYPE (llama-quantize --pure): no Q6_K output, no mixes")(
      "pad-vocab", po::bool_switch(), "pad a smaller vocabulary with unused tokens up to the shape's size")(
      "parts", po::value<int>()->default_value(1),
      "write a split model of N parts, OUT-0000K-of-0000N.gguf, as gguf-split does")(
      "sparse", po::bool_switch(),
      "leave the tensor data a hole (no disk used, reads as zeros): a full-size file for 'plan' and 'doctor', not for "
      "answers")("distinct-rows", po::value<int64_t>()->default_value(0),
                 "N > 0: quantise N distinct rows per tensor and repeat them (a full-size file for speed benchmarks in "
                 "minutes; not for answers)");
  po::positional_options_description pos;
  pos.add("out", 1);
  const std::string usage =
      "clusterctl model synth --shape NAME --type TYPE --vocab VOCAB.gguf OUT.gguf [--seed S]\n\nShapes:\n" +
      shape_list();
  // Name the verb in full in parse errors ("see 'clusterctl model synth --help'").
  std::vector<char*> args(argv, argv + argc);
  std::string verb = "model synth";
  args[0] = verb.data();
  auto vm = parse_options(argc, args.data(), usage, opts, pos);
  if (!vm) return 0;
  if (!vm->count("out"))
    throw Error("no output file: give OUT.gguf as the last argument (see 'clusterctl model synth --help')");
  if ((*vm)["seed"].as<int64_t>() < 0)
    throw Error("--seed must be 0 or positive, not " + std::to_string((*vm)["seed"].as<int64_t>()));

  model::SynthOptions o;
  o.shape = (*vm)["shape"].as<std::string>();
  o.type = (*vm)["type"].as<std::string>();
  o.vocab_path = (*vm)["vocab"].as<std::string>();
  o.out_path = (*vm)["out"].as<std::string>();
  o.seed = static_cast<uint64_t>((*vm)["seed"].as<int64_t>());
  o.threads = (*vm)["threads"].as<int>();
  if (o.threads < 0) throw Error("--threads must be 0 (automatic) or positive, not " + std::to_string(o.threads));
  o.pure = (*vm)["pure"].as<bool>();
  o.pad_vocab = (*vm)["pad-vocab"].as<bool>();
  o.parts = (*vm)["parts"].as<int>();
  o.sparse = (*vm)["sparse"].as<bool>();
  if (o.parts < 1) throw Error("--parts must be 1 or more, not " + std::to_string(o.parts));
  const int64_t distinct = (*vm)["distinct-rows"].as<int64_t>();
  if (distinct < 0)
    throw Error("--distinct-rows must be 0 (every row drawn) or positive, not " + std::to_string(distinct));
  o.distinct_rows = static_cast<uint64_t>(distinct);
  o.log = [](const std::string& line) { std::cout << line << std::endl; };
  model::find_synth_shape(o.shape);  // fail on a bad name before reading the vocabulary
  model::find_synth_type(o.type);
  model::synth_model(o);
  return 0;
}

int quantize_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("in", po::value<std::string>(),
                     "the F32, F16 or BF16 model (first positional argument; a split model's first part or folder)")(
      "out", po::value<std::string>(), "output GGUF file (second positional argument)")(
      "type", po::value<std::string>()->required(), ("llama-quantize type or preset: " + type_list()).c_str())(
      "pure", po::bool_switch(), "every matrix in TYPE (llama-quantize --pure): no Q6_K output, no mixes")(
      "threads", po::value<int>()->default_value(0), "threads (0: the physical cores)");
  po::positional_options_description pos;
  pos.add("in", 1).add("out", 1);
  const std::string usage =
      "clusterctl model quantize IN.gguf OUT.gguf --type TYPE [--pure]\n\n"
      "Makes a quantised copy as llama-quantize does (the same per-tensor types, quantisers, tensor order\n"
      "and metadata: the same bytes), e.g. a small draft model for speculative decoding.";
  std::vector<char*> args(argv, argv + argc);
  std::string verb = "model quantize";
  args[0] = verb.data();
  auto vm = parse_options(argc, args.data(), usage, opts, pos);
  if (!vm) return 0;
  if (!vm->count("in") || !vm->count("out"))
    throw Error("give the input and the output model: clusterctl model quantize IN.gguf OUT.gguf --type TYPE");
  model::QuantizeOptions o;
  o.in_path = (*vm)["in"].as<std::string>();
  o.out_path = (*vm)["out"].as<std::string>();
  o.type = (*vm)["type"].as<std::string>();
  o.pure = (*vm)["pure"].as<bool>();
  o.threads = (*vm)["threads"].as<int>();
  if (o.threads < 0) throw Error("--threads must be 0 (automatic) or positive, not " + std::to_string(o.threads));
  o.log = [](const std::string& line) { std::cout << line << std::endl; };
  model::quantize_model(o);
  return 0;
}

}  // namespace

// `clusterctl model SUBCOMMAND ...`: tools that make or change model files.
int model_main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cout << "Usage: clusterctl model SUBCOMMAND [ARGS] [--help]\n\nSubcommands:\n"
                 "  synth       write a random-weight model shaped like a real one\n"
                 "  quantize    make a quantised copy of a model, as llama-quantize does\n";
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "synth")) return synth_main(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "quantize")) return quantize_main(argc - 1, argv + 1);
  throw Error(std::string("unknown subcommand 'model ") + argv[1] +
              "' (known: synth, quantize; see 'clusterctl model --help')");
}

}  // namespace clusterctl::cli
