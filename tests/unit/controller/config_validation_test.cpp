// Every validation rule of the cluster file: a bad file, and the diagnostic it must produce
// (line:column, message, hint).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "controller/config/cluster_config.h"
#include "controller/config/nearest_name.h"
#include "worker/common/error.h"

namespace clusterctl::config {
namespace {

// A valid two-node file that the tests below break in one place each.
const char* kGood = R"(cluster: lab
model: models/m.gguf
defaults:
  user: root
  link: {type: ethernet, interface: eth0}
nodes:
  - name: a
    host: 10.0.0.1
  - name: b
    host: 10.0.0.2
)";

std::vector<Diagnostic> problems(const std::string& yaml) {
  try {
    parse_cluster_config(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "t.yaml");
    return e.diagnostics();
  }
  return {};
}

std::string dump(const std::vector<Diagnostic>& ds) {
  std::string s;
  for (const auto& d : ds) s += d.format("t.yaml") + "\n";
  return s.empty() ? "(no problems)" : s;
}

// Asserts that `yaml` yields a diagnostic at line:column whose message (and hint) contain the texts.
void expect_problem(const std::string& yaml, int line, int column, const std::string& message,
                    const std::string& hint = "") {
  auto ds = problems(yaml);
  for (const auto& d : ds)
    if (d.pos.line == line && d.pos.column == column && d.message.find(message) != std::string::npos &&
        d.hint.find(hint) != std::string::npos)
      return;
  ADD_FAILURE() << "expected t.yaml:" << line << ":" << column << ": " << message << " [hint: " << hint
                << "]\nbut got:\n"
                << dump(ds);
}

TEST(ConfigValidation, GoodFileParses) {
  auto c = parse_cluster_config(kGood, "dir/t.yaml");
  EXPECT_EQ(c.name, "lab");
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[1].host, "10.0.0.2");
  EXPECT_EQ(c.nodes[1].port, 22);
  EXPECT_EQ(c.nodes[1].user, "root");
  ASSERT_TRUE(c.nodes[0].link);
  EXPECT_EQ(c.nodes[0].link->interface, "eth0");
  EXPECT_EQ(c.model_path, "dir/models/m.gguf");  // relative to the file's folder
  EXPECT_EQ(c.api.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.api.parallel, 4);
  EXPECT_DOUBLE_EQ(c.weight_share(0), 0.5);
  EXPECT_EQ(c.total_ranks(), 2);
}

// `model:` naming a model on Hugging Face (no such file here) is pulled by `up`; a path stays a path.
TEST(ConfigValidation, ModelOnHuggingFace) {
  auto with_model = [](const std::string& model) {
    std::string yaml = kGood;
    yaml.replace(yaml.find("models/m.gguf"), 13, model);
    return parse_cluster_config(yaml, "dir/t.yaml");
  };
  auto hub = with_model("unsloth/Qwen3-8B-GGUF:Q4_K_M");
  EXPECT_EQ(hub.model_hub, "unsloth/Qwen3-8B-GGUF:Q4_K_M");
  EXPECT_EQ(hub.model_path, "");
  EXPECT_EQ(with_model("org/repo/sub/M-Q8_0.gguf").model_hub, "org/repo/sub/M-Q8_0.gguf");
  for (const char* path : {"models/m.gguf", "./org/name", "/srv/m.gguf", "m.gguf"}) {
    auto c = with_model(path);
    EXPECT_EQ(c.model_hub, "") << path;
    EXPECT_NE(c.model_path, "") << path;
  }
  EXPECT_EQ(with_model("llama-3.1-8b").model_hub, "");  // a name of the model cache
}

// Issue #19: the liveness settings and the serve flags of `api:` (--cors-origin, --allowed-host,
// --health-open) come from the cluster file, validated like every other key.
TEST(ConfigValidation, LivenessAndApiAccessKeys) {
  auto c = parse_cluster_config(kGood, "t.yaml");
  EXPECT_DOUBLE_EQ(c.liveness.heartbeat_interval_s, 1);
  EXPECT_DOUBLE_EQ(c.liveness.node_timeout_s, 6);
  EXPECT_DOUBLE_EQ(c.liveness.step_timeout_s, 300);
  EXPECT_TRUE(c.api.cors_origins.empty());
  EXPECT_FALSE(c.api.health_open);
  c = parse_cluster_config(std::string(kGood) +
                               "liveness: {heartbeat_interval: 0.5, node_timeout: 3, step_timeout: 60}\n"
                               "api:\n  cors_origins: [https://app.example, 'http://localhost:3000']\n"
                               "  allowed_hosts: chat.local\n  health_open: true\n",
                           "t.yaml");
  EXPECT_DOUBLE_EQ(c.liveness.heartbeat_interval_s, 0.5);
  EXPECT_DOUBLE_EQ(c.liveness.node_timeout_s, 3);
  EXPECT_DOUBLE_EQ(c.liveness.step_timeout_s, 60);
  EXPECT_EQ(c.api.cors_origins, (std::vector<std::string>{"https://app.example", "http://localhost:3000"}));
  EXPECT_EQ(c.api.allowed_hosts, (std::vector<std::string>{"chat.local"}));
  EXPECT_TRUE(c.api.health_open);

  const std::string good = kGood;
  expect_problem(good + "liveness: {node_timeout: 1}\n", 11, 26,
                 "'node_timeout' in 'liveness' must be at least twice heartbeat_interval", "raise node_timeout");
  expect_problem(good + "liveness: {node_timeout: soon}\n", 11, 26,
                 "'node_timeout' in 'liveness' must be a number of seconds from 0.1 to 3600, not 'soon'");
  expect_problem(good + "liveness: {step_timeout: -1}\n", 11, 26, "'step_timeout' -1 in 'liveness' is out of range",
                 "use a number of seconds from 0 to 86400");
  expect_problem(good + "liveness: {heartbeat: 1}\n", 11, 12, "unknown key 'heartbeat' in 'liveness'");
  expect_problem(good + "liveness: 5\n", 11, 11, "'liveness' must be a mapping");
  expect_problem(good + "api: {cors_origins: [evil.example]}\n", 11, 21, "bad origin 'evil.example'",
                 "https://app.example");
  expect_problem(good + "api: {allowed_hosts: [a b]}\n", 11, 22, "bad host name 'a b'");
  expect_problem(good + "api: {allowed_hosts: {x: 1}}\n", 11, 22, "'allowed_hosts' in 'api' must be a list");
  expect_problem(good + "api: {health_open: yes please}\n", 11, 20, "'health_open' in 'api' must be true or false");
}

TEST(ConfigValidation, RestartPolicy) {
  EXPECT_FALSE(parse_cluster_config(kGood, "t.yaml").restart_on_failure);
  EXPECT_TRUE(parse_cluster_config(std::string(kGood) + "restart: on-failure\n", "t.yaml").restart_on_failure);
  EXPECT_FALSE(parse_cluster_config(std::string(kGood) + "restart: no\n", "t.yaml").restart_on_failure);
  expect_problem(std::string(kGood) + "restart: always\n", 11, 10, "unknown restart policy 'always'",
                 "write 'restart: on-failure'");
}

TEST(ConfigValidation, YamlSyntaxErrorHasPosition) {
  expect_problem("cluster: lab\nnodes:\n  - name: a\n   host: [x\n", 4, 4, "YAML syntax");
}

TEST(ConfigValidation, TopLevelMustBeMapping) { expect_problem("- a\n- b\n", 1, 1, "must be a mapping"); }

TEST(ConfigValidation, UnknownTopLevelKeySuggestsNearest) {
  expect_problem(std::string(kGood) + "modle: x\n", 11, 1, "unknown key 'modle' at the top level",
                 "did you mean 'model'?");
}

TEST(ConfigValidation, UnknownNodeKeySuggestsNearest) {
  std::string y = kGood;
  y.replace(y.find("    host: 10.0.0.2"), 18, "    host: 10.0.0.2\n    prot: 2222");
  expect_problem(y, 11, 5, "unknown key 'prot' in node 'b'", "did you mean 'port'?");
}

TEST(ConfigValidation, UnknownKeyFarFromAnyListsKnownKeys) {
  expect_problem(std::string(kGood) + "zzzzzzzz: 1\n", 11, 1, "unknown key 'zzzzzzzz'",
                 "known keys here: cluster, model");
}

TEST(ConfigValidation, DuplicateKey) {
  expect_problem(std::string(kGood) + "cluster: other\n", 11, 1, "duplicate key 'cluster'", "line 1");
}

TEST(ConfigValidation, MissingRequiredFields) {
  auto ds = problems("api: {listen: 127.0.0.1:9000}\n");
  EXPECT_EQ(ds.size(), 3u) << dump(ds);  // cluster, model, nodes: all reported at once
  expect_problem("api: {listen: 127.0.0.1:9000}\n", 1, 1, "missing field 'cluster'");
  expect_problem("api: {listen: 127.0.0.1:9000}\n", 1, 1, "missing field 'model'");
  expect_problem("api: {listen: 127.0.0.1:9000}\n", 1, 1, "missing field 'nodes'");
}

TEST(ConfigValidation, MissingNodeHostAndName) {
  expect_problem("cluster: c\nmodel: m\nnodes:\n  - ranks: 1\n", 4, 5, "missing field 'name' in node 1");
  expect_problem("cluster: c\nmodel: m\nnodes:\n  - name: x\n", 4, 5, "missing field 'host' in node 'x'");
}

TEST(ConfigValidation, EmptyValue) {
  expect_problem("cluster:\nmodel: m\nnodes:\n  - {name: a, host: h}\n", 1, 1,
                 "'cluster' in the top level has no value");
}

TEST(ConfigValidation, WrongTypes) {
  std::string y = kGood;
  y.replace(y.find("    host: 10.0.0.1"), 18, "    host: 10.0.0.1\n    port: twentytwo\n    ranks: [1]");
  expect_problem(y, 9, 11, "'port' in node 'a' must be a whole number, not 'twentytwo'");
  expect_problem(y, 10, 12, "'ranks' in node 'a' must be a whole number, not a list");
  expect_problem("cluster: c\nmodel: m\nnodes: {a: 1}\n", 3, 8, "'nodes' must be a non-empty list");
  expect_problem("cluster: [c]\nmodel: m\nnodes:\n  - {name: a, host: h}\n", 1, 10,
                 "'cluster' in the top level must be a string, not a list");
  expect_problem("cluster: c\nmodel: m\napi: 8080\nnodes:\n  - {name: a, host: h}\n", 3, 6, "'api' must be a mapping");
}

TEST(ConfigValidation, PortRange) {
  std::string y = kGood;
  y.replace(y.find("    host: 10.0.0.2"), 18, "    host: 10.0.0.2\n    port: 70000");
  expect_problem(y, 11, 11, "port 70000 in node 'b' is out of range", "from 1 to 65535");
  expect_problem("cluster: c\nmodel: m\napi: {parallel: 0}\nnodes:\n  - {name: a, host: h}\n", 3, 17,
                 "'parallel' 0 in 'api' is out of range");
  EXPECT_EQ(
      parse_cluster_config("cluster: c\nmodel: m\napi: {parallel: 16}\nnodes:\n  - {name: a, host: h}\n", "t.yaml")
          .api.parallel,
      16);
  expect_problem("cluster: c\nmodel: m\napi: {listen: '0.0.0.0:0'}\nnodes:\n  - {name: a, host: h}\n", 3, 15,
                 "bad api listen address '0.0.0.0:0': the port after ':' must be a number from 1 to 65535");
}

// Issue #18: speculative decoding from the cluster file.
TEST(ConfigValidation, ApiDraft) {
  auto c = parse_cluster_config(
      "cluster: c\nmodel: m\napi: {draft: ngram, draft_max: 12}\nnodes:\n  - {name: a, host: h}\n", "dir/t.yaml");
  EXPECT_EQ(c.api.draft, "ngram");
  EXPECT_EQ(c.api.draft_max, 12);
  c = parse_cluster_config("cluster: c\nmodel: m\napi: {draft: small.gguf}\nnodes:\n  - {name: a, host: h}\n",
                           "dir/t.yaml");
  EXPECT_TRUE(c.api.draft.ends_with("dir/small.gguf")) << c.api.draft;
  EXPECT_EQ(c.api.draft_max, 0);
  expect_problem("cluster: c\nmodel: m\napi: {draft: lookup}\nnodes:\n  - {name: a, host: h}\n", 3, 14,
                 "api draft 'lookup' is neither 'ngram' nor a .gguf file", "draft: ngram");
  expect_problem("cluster: c\nmodel: m\napi: {draft: ngram, draft_max: 65}\nnodes:\n  - {name: a, host: h}\n", 3, 32,
                 "'draft_max' 65 in 'api' is out of range");
  expect_problem("cluster: c\nmodel: m\napi: {draft_max: 4}\nnodes:\n  - {name: a, host: h}\n", 3, 18,
                 "api draft_max without api draft drafts nothing");
  expect_problem("cluster: c\nmodel: m\napi: {drafts: ngram}\nnodes:\n  - {name: a, host: h}\n", 3, 7,
                 "unknown key 'drafts'", "'draft'");
}

TEST(ConfigValidation, DuplicateNodeName) {
  std::string y = kGood;
  y.replace(y.find("name: b"), 7, "name: a");
  expect_problem(y, 9, 11, "duplicate node name 'a'", "line 7");
}

TEST(ConfigValidation, DuplicateHostAndPort) {
  std::string y = kGood;
  y.replace(y.find("10.0.0.2"), 8, "10.0.0.1");
  expect_problem(y, 10, 11, "same host and port (10.0.0.1:22)", "raise its 'ranks'");
  y.replace(y.find("    host: 10.0.0.1", y.find("name: b")), 18, "    host: 10.0.0.1\n    port: 2222");
  EXPECT_TRUE(problems(y).empty()) << dump(problems(y));  // another port is another sshd: allowed
}

TEST(ConfigValidation, ImpossibleSplitWeights) {
  std::string y = kGood;
  y.replace(y.find("    host: 10.0.0.2"), 18, "    host: 10.0.0.2\n    weight: 0");
  expect_problem(y, 11, 13, "impossible split: 'weight' in node 'b' is 0");
  y.replace(y.find("weight: 0"), 9, "weight: -2");
  expect_problem(y, 11, 13, "weight must be above 0");
  y.replace(y.find("weight: -2"), 10, "weight: heavy");
  expect_problem(y, 11, 13, "must be a number or 'by memory'");
  y.replace(y.find("weight: heavy"), 13, "weight: by memory");
  expect_problem(y, 11, 13, "node 'b' is weighted by memory but node 'a' has a numeric weight");
}

TEST(ConfigValidation, ImpossibleSplitRanks) {
  std::string y = kGood;
  y.replace(y.find("    host: 10.0.0.2"), 18, "    host: 10.0.0.2\n    ranks: 0");
  expect_problem(y, 11, 12, "'ranks' 0 in node 'b' is out of range", "from 1 to 1024");
}

TEST(ConfigValidation, MoreRanksThanHeads) {
  std::string y = kGood;
  y.replace(y.find("    host: 10.0.0.2"), 18, "    host: 10.0.0.2\n    ranks: 8");
  auto c = parse_cluster_config(y, "t.yaml");
  auto ds = check_against_model(c, /*n_head=*/8, /*n_ctx_train=*/2048);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].pos.line, 7);
  EXPECT_EQ(ds[0].pos.column, 3);
  EXPECT_NE(ds[0].message.find("9 ranks in total but the model has only 8 attention heads"), std::string::npos);
  EXPECT_TRUE(check_against_model(c, 9, 2048).empty());
}

TEST(ConfigValidation, BadCidr) {
  std::string y = kGood;
  y.replace(y.find("interface: eth0"), 15, "cidr: 10.0.0.0/33");
  expect_problem(y, 5, 32, "bad CIDR '10.0.0.0/33'", "10.0.0.0/24");
  y.replace(y.find("10.0.0.0/33"), 11, "10.0.300.0/24");
  expect_problem(y, 5, 32, "'10.0.300.0' is not an IPv4 address");
  y.replace(y.find("10.0.300.0/24"), 13, "10.0.0.7/24");
  expect_problem(y, 5, 32, "host bits are set; the network is 10.0.0.0/24");
  y.replace(y.find("10.0.0.7/24"), 11, "10.0.0.0");
  expect_problem(y, 5, 32, "needs a prefix length");
}

TEST(ConfigValidation, LinkRules) {
  std::string y = kGood;
  y.replace(y.find("type: ethernet"), 14, "type: thunderbolts");
  expect_problem(y, 5, 16, "unknown link type 'thunderbolts'", "did you mean 'thunderbolt'?");
  y = kGood;
  y.replace(y.find(", interface: eth0"), 17, "");
  expect_problem(y, 5, 9, "missing field 'interface' or 'cidr'");
  y = kGood;
  y.replace(y.find("interface: eth0"), 15, "interface: eth0, cidr: 10.0.0.0/24");
  expect_problem(y, 5, 9, "both 'interface' and 'cidr'");
  y = kGood;
  y.replace(y.find("  link: {type: ethernet, interface: eth0}\n"), 42, "");
  expect_problem(y, 6, 5, "missing field 'link' in node 'a'");
  expect_problem(y, 8, 5, "missing field 'link' in node 'b'");
}

// Issue #17: the link's all-reduce keys, the emulation among them, parsed strictly.
TEST(ConfigValidation, LinkAllreduceKeys) {
  std::string y = kGood;
  y.replace(y.find("interface: eth0}"), 16,
            "interface: eth0, allreduce: one-shot, transport: tcp, wire_format: bf16, emulate: "
            "'latency=300us,bandwidth=10gbit'}");
  const auto c = parse_cluster_config(y, "t.yaml");
  ASSERT_TRUE(c.nodes[1].link);
  EXPECT_EQ(c.nodes[1].link->allreduce, "one-shot");
  EXPECT_EQ(c.nodes[1].link->transport, "tcp");
  EXPECT_EQ(c.nodes[1].link->wire_format, "bf16");
  EXPECT_EQ(c.nodes[1].link->emulate, "latency=300us,bandwidth=10gbit");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, emulate: 'latency=300'}");
  expect_problem(y, 5, 52, "bad link emulation 'latency=300'", "latency=300us,bandwidth=10gbit");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, wire_format: fp4}");
  expect_problem(y, 5, 56, "unknown wire format 'fp4'", "use double");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, overlap_prompt: maybe}");
  expect_problem(y, 5, 59, "unknown overlap_prompt 'maybe'", "use auto");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, overlap_prompt: 'off'}");
  EXPECT_EQ(parse_cluster_config(y, "t.yaml").nodes[1].link->overlap_prompt, "off");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, allreduce: teleport}");
  expect_problem(y, 5, 54, "unknown all-reduce algorithm 'teleport'", "one-shot");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, transport: udp}");
  expect_problem(y, 5, 54, "unknown all-reduce transport 'udp'", "mpi or tcp");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, tcp_interface: 'tb0, 10.77.2.0/24'}");
  EXPECT_EQ(parse_cluster_config(y, "t.yaml").nodes[1].link->tcp_interface, "tb0, 10.77.2.0/24");
  y = kGood;
  y.replace(y.find("interface: eth0}"), 16, "interface: eth0, tcp_interface: 10.77.2.0/33}");
  expect_problem(y, 5, 58, "bad tcp_interface '10.77.2.0/33'", "tcp_interface: 10.77.2.0/24");
  y = kGood;
  y += "    link: {type: ethernet, interface: eth0, wire_format: bf16}\n";
  expect_problem(y, 11, 11, "another allreduce, transport, wire_format, emulate or overlap_prompt", "defaults");
}

TEST(ConfigValidation, SingleNodeNeedsNoLink) {
  auto c = parse_cluster_config("cluster: c\nmodel: m\nnodes:\n  - {name: a, host: localhost}\n", "t.yaml");
  EXPECT_TRUE(c.nodes[0].is_local());
  EXPECT_FALSE(c.nodes[0].link);
}

TEST(ConfigValidation, BadNames) {
  expect_problem("cluster: my lab\nmodel: m\nnodes:\n  - {name: a, host: h}\n", 1, 10, "cluster name 'my lab'");
  expect_problem("cluster: c\nmodel: m\nnodes:\n  - {name: 'a b', host: h}\n", 4, 12, "node name 'a b'");
  expect_problem("cluster: c\nmodel: m\nnodes:\n  - {name: a, host: root@h}\n", 4, 21, "bad host 'root@h'", "'user:'");
}

TEST(ConfigValidation, ReportsEveryProblemNotJustTheFirst) {
  std::string y =
      "cluster: c\nmodel: m\nnodes:\n  - {name: a, host: h, prot: 1}\n  - {name: a, host: h2, weight: 0}\n"
      "ssh: {known_host: x, connect_timeout: 0}\n";
  auto ds = problems(y);
  // known_host, connect_timeout, prot, duplicate a, weight 0, and both nodes' missing links
  EXPECT_EQ(ds.size(), 7u) << dump(ds);
}

TEST(ConfigValidation, DefaultsApplyAndNodesOverride) {
  auto c = parse_cluster_config(R"(cluster: c
model: m
defaults: {user: u, port: 2200, ranks: 2, weight: 2, link: {type: thunderbolt, cidr: 10.9.0.0/16}}
nodes:
  - {name: a, host: h1}
  - {name: b, host: h2, port: 22, weight: 6, link: {type: ethernet, interface: en0}}
)",
                                "t.yaml");
  EXPECT_EQ(c.nodes[0].port, 2200);
  EXPECT_EQ(c.nodes[0].user, "u");
  EXPECT_EQ(c.nodes[0].ranks, 2);
  EXPECT_EQ(c.nodes[0].link->describe(), "thunderbolt 10.9.0.0/16");
  EXPECT_EQ(c.nodes[1].port, 22);
  EXPECT_EQ(c.nodes[1].link->describe(), "ethernet en0");
  EXPECT_DOUBLE_EQ(c.weight_share(1), 0.75);
}

TEST(ConfigValidation, FormatIsCompilerStyle) {
  Diagnostic d{{3, 7}, "unknown key 'prot' in node 'a'", "did you mean 'port'?"};
  EXPECT_EQ(d.format("c.yaml"), "c.yaml:3:7: error: unknown key 'prot' in node 'a'\n  hint: did you mean 'port'?");
}

TEST(ConfigValidation, UnreadableFileNamesIt) {
  try {
    load_cluster_config("/nonexistent/cluster.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cluster.yaml"), std::string::npos);
  }
}

TEST(ConfigValidation, ShippedExamplesAreValid) {
  for (const char* name : {"local", "mac-minis-thunderbolt", "linux-4-ethernet", "mixed-uneven", "testcluster-3"}) {
    std::string path = std::string(CLUSTERCTL_SOURCE_DIR) + "/configs/" + name + ".yaml";
    EXPECT_NO_THROW(load_cluster_config(path)) << path;
  }
}

// What the reader takes from outside is bounded: the file's size, its depth, and how much of a
// value a message echoes.
TEST(ConfigBounds, AFileLargerThanTheBoundIsRefusedUnread) {
  const auto dir = std::filesystem::temp_directory_path() / ("config_bounds_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string big = (dir / "big.yaml").string();
  {
    std::ofstream out(big);
    out << kGood << "# " << std::string(kMaxClusterFileBytes, 'x') << "\n";
  }
  for (const std::string& path : {big, std::string("/dev/zero")}) {
    try {
      load_cluster_config(path);
      ADD_FAILURE() << path << " was read";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("larger than 1024 KiB"), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(ConfigBounds, MessagesEchoAtMostAShortPrefixOfAValue) {
  const std::string huge(500000, 'x');
  auto ds = problems(std::string(kGood) + "api: {listen: '" + huge + "'}\n");
  ASSERT_FALSE(ds.empty());
  for (const auto& d : ds) EXPECT_LT(d.message.size() + d.hint.size(), 400u) << d.message.substr(0, 200);
  expect_problem(std::string(kGood) + "api: {listen: '" + huge + "'}\n", 11, 15, "(500000 characters)");
}

TEST(ConfigBounds, DeepNestingIsRefusedBeforeParsing) {
  // yaml-cpp recurses once per level: 100000 levels would overflow the stack.
  const int n = 100000;
  expect_problem(std::string(kGood) + "api: " + std::string(n, '[') + std::string(n, ']') + "\n", 11, 70,
                 "nests deeper than 64 levels");
  std::string dashes;
  for (int i = 0; i < n; ++i) dashes += "- ";
  expect_problem(std::string(kGood) + "ssh:\n" + dashes + "x\n", 12, 1, "nests deeper than 64 levels");
}

TEST(ConfigBounds, ASecondDocumentIsRefusedByPosition) {
  expect_problem(std::string(kGood) + "---\ncluster: other\n", 12, 1, "holds 2 YAML documents", "'---'");
}

TEST(ConfigBounds, MergeKeysMergeAsYamlSays) {
  auto c = parse_cluster_config(R"(cluster: lab
model: models/m.gguf
nodes:
  - &first
    name: a
    host: 10.0.0.1
    user: admin
    link: {type: ethernet, interface: eth0}
  - <<: *first
    name: b
    host: 10.0.0.2
)",
                                "t.yaml");
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[1].name, "b");
  EXPECT_EQ(c.nodes[1].host, "10.0.0.2");
  EXPECT_EQ(c.nodes[1].user, "admin");
}

TEST(NearestName, EditDistance) {
  EXPECT_EQ(edit_distance("port", "prot"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("identity", "identiy"), 1u);
  constexpr std::string_view keys[] = {"port", "user", "identity"};
  EXPECT_EQ(nearest_name("identiy", keys), "identity");
  EXPECT_EQ(nearest_name("xyz", keys), "");
}

}  // namespace
}  // namespace clusterctl::config
