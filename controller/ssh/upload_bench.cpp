// Throughput of sftp_upload against one node, for the report (never a timed test):
//   clusterctl_upload_bench USER@HOST IDENTITY KNOWN_HOSTS LOCAL_FILE REMOTE_PATH
// Copies LOCAL_FILE fresh (any earlier remote copy is deleted first), then again (the "already
// there" check), and prints MB/s, plus the rate and ETA the progress callback would show about
// every second, so that a rate-limited link can be checked against its limit.
#include <chrono>
#include <cstdio>
#include <string>

#include "controller/ssh/sftp_upload.h"
#include "controller/ssh/ssh_session.h"

using namespace clusterctl::ssh;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s USER@HOST IDENTITY KNOWN_HOSTS LOCAL_FILE REMOTE_PATH\n", argv[0]);
    return 2;
  }
  try {
    const std::string who = argv[1];
    SshTarget t;
    t.user = who.substr(0, who.find('@'));
    t.host = who.substr(who.find('@') + 1);
    t.identity = argv[2];
    t.known_hosts = argv[3];
    const std::string local = argv[4], remote = argv[5];
    SshSession s(t);
    const std::string rel = remote.starts_with("~/") ? remote.substr(2) : remote;
    const std::string dir = rel.substr(0, rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/'));
    s.exec("rm -f " + shell_quote(rel) + (dir.empty() ? "" : " " + shell_quote(dir) + "/.*"));

    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    auto last = t0;
    auto progress = [&](uint64_t done, uint64_t total) {
      auto now = clock::now();
      if (now - last < std::chrono::seconds(1) && done < total) return;
      last = now;
      double secs = std::chrono::duration<double>(now - t0).count();
      double rate = done / secs;
      std::printf("  t=%5.1f s  %7.1f MB / %.1f MB  %6.1f MB/s  ETA %.0f s\n", secs, done / 1e6, total / 1e6,
                  rate / 1e6, rate > 0 ? (total - done) / rate : 0.0);
    };
    auto fresh = sftp_upload(s, local, remote, progress);
    double fresh_s = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("fresh copy: %.1f MB in %.2f s = %.1f MB/s (sent %.1f MB)\n", fresh.size / 1e6, fresh_s,
                fresh.size / 1e6 / fresh_s, fresh.bytes_sent / 1e6);

    auto t1 = clock::now();
    auto again = sftp_upload(s, local, remote);
    double again_s = std::chrono::duration<double>(clock::now() - t1).count();
    std::printf("second call: already there=%d, sent %.1f MB, %.2f s\n", int(again.already_there),
                again.bytes_sent / 1e6, again_s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
