// libssh session and SFTP upload against the real sshds of the namespaces test cluster
// (ctest fixture `testcluster`; deploy/testcluster up).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "controller/ssh/parallel.h"
#include "controller/ssh/sftp_upload.h"
#include "controller/ssh/sha256.h"
#include "controller/ssh/ssh_session.h"

namespace clusterctl::ssh {
namespace {

std::string cluster_dir() {
  const char* d = std::getenv("CLUSTERCTL_TESTCLUSTER_DIR");
  return d ? d : "/tmp/clusterctl-testcluster";
}

#define REQUIRE_TESTCLUSTER()                                                                                    \
  if (getuid() != 0) GTEST_SKIP() << "needs root and the test cluster (deploy/testcluster up)";                  \
  if (!std::filesystem::exists(cluster_dir() + "/nodes")) {                                                      \
    if (std::getenv("CI") && std::string(std::getenv("CI")) == "true") FAIL() << "test cluster not up under CI"; \
    GTEST_SKIP() << "the test cluster is not up: run deploy/testcluster up";                                     \
  }

SshTarget node(int k) {
  SshTarget t;
  t.host = "10.77.1." + std::to_string(k);
  t.user = "root";
  t.identity = cluster_dir() + "/id_ed25519";
  t.known_hosts = cluster_dir() + "/known_hosts";
  t.connect_timeout_s = 5;
  return t;
}

TEST(SshSession, ExecCollectsStdoutStderrAndStatus) {
  REQUIRE_TESTCLUSTER();
  SshSession s(node(2));
  EXPECT_EQ(s.host_key_fingerprint().rfind("SHA256:", 0), 0u);
  auto r = s.exec("hostname; echo oops >&2; exit 7");
  EXPECT_EQ(r.out, "node2\n");
  EXPECT_EQ(r.err, "oops\n");
  EXPECT_EQ(r.status, 7);
  auto big = s.exec("head -c 300000 /dev/zero | tr '\\0' x");  // more than one channel window
  EXPECT_EQ(big.out.size(), 300000u);
  EXPECT_EQ(big.status, 0);
}

TEST(SshSession, ExecTimesOut) {
  REQUIRE_TESTCLUSTER();
  SshSession s(node(1));
  try {
    s.exec("sleep 5", std::chrono::milliseconds(300));
    FAIL() << "expected a timeout";
  } catch (const SshError& e) {
    EXPECT_EQ(e.kind(), SshFailure::timeout);
    EXPECT_NE(e.cause().find("did not finish within 300 ms"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.exec("echo still usable").out, "still usable\n");
}

TEST(SshSession, TimedOutCommandIsStoppedOnTheNode) {
  REQUIRE_TESTCLUSTER();
  SshSession s(node(2));
  // A marker in the command line makes the processes findable; a child (sleep) must end too.
  const std::string marker = "clusterctl-timeout-probe-" + std::to_string(getpid());
  EXPECT_THROW(s.exec("sh -c 'sleep 30; : " + marker + "' & sleep 30; : " + marker, std::chrono::milliseconds(400)),
               SshError);
  auto left = s.exec("sleep 0.5; pgrep -f -- '" + marker + "' | grep -v \"^$$\\$\" || true");
  EXPECT_EQ(left.out, "") << "processes of the timed-out command still run on node2";
  EXPECT_EQ(left.err, "");
}

// The stop rule (stop_rule.h), as LocalShell's: TERM first, so the command can clean up.
TEST(SshSession, TimedOutCommandGetsTermFirst) {
  REQUIRE_TESTCLUSTER();
  SshSession s(node(3));
  const auto noted = std::filesystem::temp_directory_path() / ("clusterctl-term-" + std::to_string(getpid()));
  EXPECT_THROW(
      s.exec("trap 'echo TERM > " + noted.string() + "; exit 0' TERM; sleep 30 & wait", std::chrono::milliseconds(400)),
      SshError);
  std::string got;
  std::getline(std::ifstream(noted), got);  // the namespaces share this machine's /tmp
  EXPECT_EQ(got, "TERM") << "the timed-out command did not get TERM on node3";
  std::filesystem::remove(noted);
}

TEST(SshSession, ConnectsToAllNodesInParallel) {
  REQUIRE_TESTCLUSTER();
  std::vector<std::string> names(3);
  for_each_node_in_parallel(3, [&](size_t i) {
    try {
      names[i] = SshSession(node(int(i) + 1)).exec("hostname").out;
    } catch (const std::exception& e) {
      names[i] = e.what();
    }
  });
  EXPECT_EQ(names, (std::vector<std::string>{"node1\n", "node2\n", "node3\n"}));
}

TEST(SshSession, WrongKeyIsRefusedWithTheFix) {
  REQUIRE_TESTCLUSTER();
  auto dir = std::filesystem::temp_directory_path() / ("clusterctl-sshtest-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string key = (dir / "stranger").string();
  ASSERT_EQ(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + key).c_str()), 0);
  auto t = node(1);
  t.identity = key;
  try {
    SshSession s(t);
    FAIL() << "a key that is not authorised logged in";
  } catch (const SshError& e) {
    EXPECT_EQ(e.kind(), SshFailure::auth) << e.what();
    EXPECT_NE(e.cause().find("root@10.77.1.1:22 refused the login"), std::string::npos) << e.what();
    EXPECT_NE(e.fix().find("ssh-copy-id -i " + key + ".pub -p 22 root@10.77.1.1"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// SFTP copy: fresh, skipped when identical, resumed after an interruption, redone when the
// partial file is not a prefix of ours. The nodes' home is the cluster's shared $D/home.
TEST(SftpUpload, FreshSkipResumeAndRedo) {
  REQUIRE_TESTCLUSTER();
  auto local = std::filesystem::temp_directory_path() / ("clusterctl-sftp-" + std::to_string(getpid()) + ".bin");
  const uint64_t size = 3 * 1024 * 1024 + 12345;
  {
    std::ofstream out(local, std::ios::binary);
    uint32_t x = 12345;
    for (uint64_t i = 0; i < size; ++i) out.put(char((x = x * 1103515245 + 12345) >> 24));
  }
  const std::string remote = "~/sftp-test-" + std::to_string(getpid()) + "/shard.bin";
  SshSession s(node(3));

  uint64_t last_done = 0;
  UploadOptions cache;
  cache.cache_local_sha256 = true;
  auto first = sftp_upload(
      s, local.string(), remote,
      [&](uint64_t done, uint64_t total) {
        EXPECT_GE(done, last_done);
        EXPECT_EQ(total, size);
        last_done = done;
      },
      cache);
  // Nothing was on the node, so the local checksum came from the bytes as they were sent.
  EXPECT_EQ(recorded_sha256_file(local.string()).value_or(""), sha256_file(local.string()));
  EXPECT_EQ(last_done, size);
  EXPECT_FALSE(first.already_there);
  EXPECT_EQ(first.bytes_sent, size);
  EXPECT_EQ(first.sha256, sha256_file(local.string()));
  EXPECT_EQ(remote_sha256(s, remote), first.sha256);

  auto again = sftp_upload(s, local.string(), remote);
  EXPECT_TRUE(again.already_there);
  EXPECT_TRUE(again.by_record) << "the checksum recorded at the first copy should make a re-hash unneeded";
  EXPECT_EQ(again.bytes_sent, 0u);
  UploadOptions verify;
  verify.verify = true;
  auto verified = sftp_upload(s, local.string(), remote, {}, verify);
  EXPECT_TRUE(verified.already_there);
  EXPECT_FALSE(verified.by_record);

  // Changed on the node in place (same size): the record no longer matches, so it is hashed,
  // found different and copied again in full.
  const std::string q0 = "sftp-test-" + std::to_string(getpid()) + "/shard.bin";
  ASSERT_EQ(s.exec("printf Z | dd of=" + q0 + " bs=1 seek=100 conv=notrunc 2>/dev/null").status, 0);
  auto rewritten = sftp_upload(s, local.string(), remote);
  EXPECT_FALSE(rewritten.already_there);
  EXPECT_EQ(rewritten.bytes_sent, size);
  EXPECT_EQ(remote_sha256(s, remote), first.sha256);

  // The controller's local checksum cache: the same digest, kept beside the file until it changes.
  EXPECT_EQ(cached_sha256_file(local.string()), first.sha256);
  const auto record = local.parent_path() / ("." + local.filename().string() + ".sha256");
  EXPECT_TRUE(std::filesystem::exists(record));
  EXPECT_EQ(cached_sha256_file(local.string()), first.sha256);
  {
    std::ofstream grow(local, std::ios::binary | std::ios::app);
    grow.put('x');
  }
  EXPECT_EQ(cached_sha256_file(local.string()), sha256_file(local.string()));
  EXPECT_NE(cached_sha256_file(local.string()), first.sha256);
  std::filesystem::resize_file(local, size);
  std::filesystem::remove(record);

  const std::string q = "sftp-test-" + std::to_string(getpid()) + "/shard.bin";
  ASSERT_EQ(s.exec("truncate -s 1048576 " + q).status, 0);  // an interrupted copy
  auto resumed = sftp_upload(s, local.string(), remote);
  EXPECT_EQ(resumed.resumed_from, 1048576u);
  EXPECT_EQ(resumed.bytes_sent, size - 1048576);
  EXPECT_EQ(remote_sha256(s, remote), first.sha256);

  // A shorter file that is not a prefix of ours: resuming gives a bad checksum, so it is redone.
  ASSERT_EQ(s.exec("truncate -s 1048576 " + q + " && printf Z | dd of=" + q + " bs=1 seek=10 conv=notrunc 2>/dev/null")
                .status,
            0);
  auto redone = sftp_upload(s, local.string(), remote);
  EXPECT_EQ(redone.resumed_from, 0u);
  EXPECT_EQ(redone.bytes_sent, (size - 1048576) + size);
  EXPECT_EQ(remote_sha256(s, remote), first.sha256);

  // A copy the node cannot write (its partial path is a folder here; a full disk looks the same)
  // is an error naming the node, and nothing is renamed into place.
  const std::string blocked = "sftp-test-" + std::to_string(getpid()) + "/blocked.bin";
  ASSERT_EQ(s.exec("mkdir -p sftp-test-" + std::to_string(getpid()) + "/.blocked.bin.partial").status, 0);
  try {
    sftp_upload(s, local.string(), "~/" + blocked);
    ADD_FAILURE() << "a copy into an unwritable partial file succeeded";
  } catch (const SshError& e) {
    EXPECT_NE(std::string(e.what()).find("10.77.1.3"), std::string::npos) << e.what();
  }
  EXPECT_NE(s.exec("test -e " + blocked).status, 0) << "a failed copy was renamed into place";

  EXPECT_EQ(remote_sha256(s, "~/no/such/file"), "");
  s.exec("rm -rf sftp-test-" + std::to_string(getpid()));
  std::filesystem::remove(local);
}

// The pids of processes whose command line contains `needle` (the node's processes share this
// machine's process table: the test cluster's nodes are network namespaces).
std::vector<pid_t> pids_with_cmdline(const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos && std::stoi(name) != getpid()) out.push_back(std::stoi(name));
  }
  return out;
}

// A node that stops taking data mid-copy (its writer stopped here; a hung disk looks the same):
// the copy ends after the stall timeout with an error naming the node, nothing is renamed into
// place, and the next upload resumes.
TEST(SftpUpload, ANodeThatStopsTakingDataEndsTheCopy) {
  REQUIRE_TESTCLUSTER();
  const std::string tag = "stall-" + std::to_string(getpid());
  auto local = std::filesystem::temp_directory_path() / ("clusterctl-" + tag + ".bin");
  const uint64_t size = 64ull << 20;
  {
    std::ofstream out(local, std::ios::binary);
    std::vector<char> block(1 << 20);
    for (uint64_t i = 0; i < size; i += block.size()) {
      for (size_t j = 0; j < block.size(); ++j) block[j] = char((i >> 20) * 31 + j * 7);
      out.write(block.data(), std::streamsize(block.size()));
    }
  }
  const std::string dir = "sftp-" + tag, remote = "~/" + dir + "/shard.bin";
  SshSession s(node(3));
  UploadOptions options;
  options.stall_timeout = std::chrono::seconds(3);
  std::vector<pid_t> stopped;
  std::chrono::steady_clock::time_point stopped_at;
  auto stop_the_writer = [&](uint64_t done, uint64_t) {
    if (!stopped.empty() || done < (8u << 20)) return;
    stopped = pids_with_cmdline(dir + "/.shard.bin.partial");
    for (pid_t p : stopped) kill(p, SIGSTOP);
    stopped_at = std::chrono::steady_clock::now();
  };
  try {
    sftp_upload(s, local.string(), remote, stop_the_writer, options);
    ADD_FAILURE() << "the copy to a node that took no more data succeeded";
  } catch (const SshError& e) {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
    const std::string message = e.what();
    EXPECT_NE(message.find("10.77.1.3:22 took no data for 3 s while copying " + local.string()), std::string::npos)
        << message;
    EXPECT_NE(std::string(e.what()).find("the copy resumes"), std::string::npos) << e.what();
    EXPECT_GE(waited, 3.0);
    EXPECT_LT(waited, 15.0) << "the stalled copy took " << waited << " s to end";
    std::printf("stalled copy ended %.1f s after the node's writer stopped: %s\n", waited, e.what());
  }
  ASSERT_FALSE(stopped.empty()) << "found no writer on the node to stop";
  for (pid_t p : stopped) kill(p, SIGCONT);
  // The node's writer sees its input closed once it runs again, and ends.
  for (int i = 0; i < 50 && !pids_with_cmdline(dir + "/.shard.bin.partial").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(pids_with_cmdline(dir + "/.shard.bin.partial").empty()) << "the node's writer still runs";
  EXPECT_NE(s.exec("test -e " + dir + "/shard.bin").status, 0) << "a stalled copy was renamed into place";

  auto resumed = sftp_upload(s, local.string(), remote);
  EXPECT_GT(resumed.resumed_from, 0u);
  EXPECT_EQ(resumed.resumed_from + resumed.bytes_sent, size);
  EXPECT_EQ(remote_sha256(s, remote), sha256_file(local.string()));
  s.exec("rm -rf " + dir);
  std::filesystem::remove(local);
}

}  // namespace
}  // namespace clusterctl::ssh
