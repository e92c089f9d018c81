#pragma once
// The engine options `run`, `perplexity` and `bench` share (--threads, --ctx, --batch, --kv-type).
#include "controller/cli/options.h"
#include "worker/model/engine.h"

namespace clusterctl::cli {

void add_engine_flags(po::options_description& opts);
// Throws clusterctl::Error naming a bad value.
model::EngineOptions engine_options(const po::variables_map& vm);

}  // namespace clusterctl::cli
