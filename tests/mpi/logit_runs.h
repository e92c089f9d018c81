#pragma once
// The logits of a teacher-forced sequence at N ranks (or from shard files) held against one
// rank's, for the multi-rank tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/mpi/process.h"
#include "tests/mpi/worker_job.h"
#include "tests/unit/shared_data.h"

namespace clusterctl::test {

// ---- logits of a teacher-forced sequence on synthetic models ----

inline std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> v(fs::file_size(path) / sizeof(float));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

struct LogitAgreement {
  double mean_kl = 0;
  double top1_same = 0;  // fraction of positions
};

inline LogitAgreement compare_logits(const std::vector<float>& a, const std::vector<float>& b, size_t n_vocab) {
  LogitAgreement r;
  const size_t rows = a.size() / n_vocab;
  for (size_t i = 0; i < rows; ++i) {
    const float* p = a.data() + i * n_vocab;
    const float* q = b.data() + i * n_vocab;
    const double mp = *std::max_element(p, p + n_vocab), mq = *std::max_element(q, q + n_vocab);
    double zp = 0, zq = 0;
    for (size_t k = 0; k < n_vocab; ++k) {
      zp += std::exp(p[k] - mp);
      zq += std::exp(q[k] - mq);
    }
    double kl = 0;
    for (size_t k = 0; k < n_vocab; ++k) {
      const double lp = p[k] - mp - std::log(zp), lq = q[k] - mq - std::log(zq);
      kl += std::exp(lp) * (lp - lq);
    }
    r.mean_kl += kl / rows;
    r.top1_same += (std::max_element(p, p + n_vocab) - p == std::max_element(q, q + n_vocab) - q) ? 1.0 / rows : 0.0;
  }
  return r;
}

// 64 token ids spread over the vocabulary (teacher forcing: the sequence is given, not generated).
inline std::string sequence_ids(int n_vocab) {
  std::string s = "1";
  uint32_t x = 12345;
  for (int i = 1; i < 64; ++i) {
    x = x * 1103515245u + 12345u;
    s += "," + std::to_string(2 + (x >> 8) % (n_vocab - 2));
  }
  return s;
}

inline std::vector<float> dump_logits(int ranks, const std::string& model, const std::string& ids,
                                      const std::string& out, const std::string& extra = "") {
  auto r = run_command(mpirun(ranks, "--model " + quote(model) + " --prompt-ids " + ids +
                                         " --threads 1 --dump-logits " + out + " " + extra),
                       900);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? read_floats(out) : std::vector<float>{};
}

// `id_range`: token ids of the sequence are drawn below it (at most the vocabulary size).
inline void expect_logits_agree(const std::string& model, int id_range,
                                const std::vector<std::pair<int, std::string>>& runs,
                                const std::string& shard_split = "") {
  TempDir tmp;
  const std::string ids = sequence_ids(id_range);
  const auto base = dump_logits(1, model, ids, tmp / "n1.bin");
  ASSERT_FALSE(base.empty());
  ASSERT_EQ(base.size() % 64, 0u);
  const size_t n_vocab = base.size() / 64;
  // The row-parallel matmuls sum on a grid every split respects and all-reduce in double
  // (kernels::matmul_row_parallel), so N ranks compute one rank's floats: the bar is strict.
  // (Before that, float partial sums in split-dependent order, amplified by the 8-bit
  // re-quantisation of activations, gave KL 3e-5 on tiny Q4_0 split 2,1 and 2.5e-4..7.9e-4 on
  // llama3-1b.)
  auto check = [&](const LogitAgreement& a, const std::string& what) {
    EXPECT_LT(a.mean_kl, 1e-5) << what << ": top-1 same " << a.top1_same;
    EXPECT_GE(a.top1_same, 0.995) << what << ": mean KL " << a.mean_kl;
    std::printf("%s: mean KL %.3g, top-1 same %.4f\n", what.c_str(), a.mean_kl, a.top1_same);
  };
  for (const auto& [ranks, extra] : runs) {
    const auto got = dump_logits(ranks, model, ids, tmp / "nk.bin", extra);
    ASSERT_EQ(got.size(), base.size()) << ranks << " ranks " << extra;
    check(compare_logits(base, got, n_vocab), std::to_string(ranks) + " ranks " + extra);
  }
  if (!shard_split.empty()) {
    const int ranks = static_cast<int>(std::count(shard_split.begin(), shard_split.end(), ',')) + 1;
    auto r = run_command(kCli + " shard " + quote(model) + " --ranks " + std::to_string(ranks) + " --split " +
                         shard_split + " --out " + (tmp / "shards"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto got = dump_logits(ranks, tmp / "shards", ids, tmp / "shard.bin", "--split " + shard_split);
    ASSERT_EQ(got.size(), base.size());
    check(compare_logits(base, got, n_vocab), "shards " + shard_split);
  }
}

// A synthetic model made by `clusterctl model synth` with the vocabulary of a shared model.
inline std::string synth_model(const TempDir& dir, const std::string& shape, const std::string& type) {
  const std::string vocab = shared_path("models/llama-2-tiny-random.gguf");
  const std::string out = dir / (shape + "-" + type + ".gguf");
  auto r = run_command(kCli + " model synth --shape " + shape + " --type " + type + " --vocab " + quote(vocab) +
                       " --threads 1 " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

}  // namespace clusterctl::test
