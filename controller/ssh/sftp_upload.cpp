#include "controller/ssh/sftp_upload.h"

#include <filesystem>
#include <sstream>

#include "controller/ssh/channel_stream.h"
#include "controller/ssh/sha256.h"

namespace clusterctl::ssh {
namespace {

// The remote shell starts in the login user's home, so "~/x" is just "x".
std::string home_relative(const std::string& remote) { return remote.starts_with("~/") ? remote.substr(2) : remote; }

std::string sibling(const std::string& path, const std::string& prefix, const std::string& suffix) {
  std::filesystem::path p(path);
  return (p.parent_path() / (prefix + p.filename().string() + suffix)).string();
}

// "SIZE MTIME CTIME INODE" of a file (GNU stat, else BSD/macOS stat; nanoseconds where known).
constexpr const char* kStatFunction =
    "st() { stat -c '%s %.9Y %.9Z %i' \"$1\" 2>/dev/null || stat -f '%z %Fm %Fc %i' \"$1\" 2>/dev/null; }; ";

std::chrono::milliseconds hash_timeout(uint64_t bytes) {
  return std::chrono::seconds(60 + bytes / (20 << 20));  // 20 MiB/s is a slow disk
}

struct RemoteState {
  bool has_file = false, has_partial = false;
  std::string file_stat;  // "SIZE MTIME CTIME INODE"
  uint64_t file_size = 0, partial_size = 0;
  std::string record;  // the recorded "SHA256 SIZE MTIME CTIME INODE", or ""
};

uint64_t leading_size(const std::string& stat_line) { return std::strtoull(stat_line.c_str(), nullptr, 10); }

// One round trip: creates the folder, then reports the target, the partial copy and the record.
RemoteState query(SshSession& session, const std::string& remote) {
  const std::string node = session.target().address();
  const std::string dir = std::filesystem::path(remote).parent_path().string();
  const std::string f = shell_quote(remote), p = shell_quote(partial_copy_path(remote)),
                    r = shell_quote(recorded_checksum_path(remote));
  std::string cmd = std::string(kStatFunction) + (dir.empty() ? "" : "mkdir -p " + shell_quote(dir) + " || exit 5; ");
  cmd += "for x in " + f + " " + p +
         "; do if [ -e \"$x\" ]; then s=$(st \"$x\") || exit 6; echo \"$s\"; else echo -; fi; done; "
         "cat " +
         r + " 2>/dev/null; true";
  auto res = session.exec(cmd);
  if (res.status == 5)
    throw SshError(SshFailure::sftp, "cannot create " + dir + " on " + node + ": " + res.err,
                   "choose a writable 'cache_dir' in the cluster file");
  if (res.status == 6)
    throw SshError(SshFailure::sftp, "cannot stat " + remote + " on " + node, "install stat (coreutils) on the node");
  if (res.status != 0)
    throw SshError(SshFailure::sftp, "cannot look at " + remote + " on " + node + ": " + res.err,
                   "check that the node's login shell is a POSIX shell");
  std::istringstream lines(res.out);
  std::string file_line, partial_line;
  std::getline(lines, file_line);
  std::getline(lines, partial_line);
  RemoteState st;
  if (file_line != "-" && !file_line.empty()) {
    st.has_file = true;
    st.file_stat = file_line;
    st.file_size = leading_size(file_line);
  }
  if (partial_line != "-" && !partial_line.empty()) {
    st.has_partial = true;
    st.partial_size = leading_size(partial_line);
  }
  std::getline(lines, st.record);
  return st;
}

// Renames the verified partial copy onto the target (when given) and records the checksum with
// the target's stat, written atomically so that a half-written record never matches.
void finish_and_record(SshSession& session, const std::string& remote, const std::string& sha, bool rename_partial) {
  const std::string f = shell_quote(remote), r = recorded_checksum_path(remote);
  std::string cmd = std::string(kStatFunction);
  if (rename_partial) cmd += "mv -f " + shell_quote(partial_copy_path(remote)) + " " + f + " || exit 7; ";
  cmd += "s=$(st " + f + ") || exit 6; printf '%s %s\\n' " + sha + " \"$s\" > " + shell_quote(r + ".tmp") +
         " && mv -f " + shell_quote(r + ".tmp") + " " + shell_quote(r);
  auto res = session.exec(cmd);
  if (res.status != 0)
    throw SshError(
        SshFailure::sftp,
        std::string(res.status == 7 ? "cannot move the verified copy onto " : "cannot record the checksum of ") +
            remote + " on " + session.target().address() + ": " + res.err,
        "check free disk space and permissions of the cache folder on the node");
}

// Streams local[from..size) onto the end of the partial copy; the node checks that the partial
// still has `from` bytes, so a concurrent change cannot leave a gap.
uint64_t append_from(SshSession& session, const std::string& local, const std::string& remote, uint64_t from,
                     uint64_t size, const UploadProgress& progress, const UploadOptions& options) {
  const std::string p = shell_quote(partial_copy_path(remote));
  stream_file_to_command(
      session, "[ $(( $(wc -c < " + p + ") )) -eq " + std::to_string(from) + " ] || exit 4; exec cat >> " + p, local,
      from, size - from,
      [&](uint64_t sent) {
        if (progress) progress(from + sent, size);
      },
      nullptr, options.stall_timeout, options.stop);
  return size - from;
}

// Streams the whole file into a fresh partial copy. The node hashes the bytes as it writes them
// (tee into sha256sum) and checks the partial's size, so the copy is never read back; its
// checksum is returned. `local_hash`, when given, is fed the bytes sent.
std::string send_fresh(SshSession& session, const std::string& local, const std::string& remote, uint64_t size,
                       const UploadProgress& progress, Sha256* local_hash, const UploadOptions& options) {
  const std::string p = shell_quote(partial_copy_path(remote));
  const std::string out = stream_file_to_command(
      session,
      "H=sha256sum; command -v sha256sum >/dev/null 2>&1 || H='shasum -a 256'; tee " + p + " | $H; [ $(( $(wc -c < " +
          p + ") )) -eq " + std::to_string(size) + " ] || exit 10",
      local, 0, size,
      [&](uint64_t sent) {
        if (progress) progress(sent, size);
      },
      local_hash, options.stall_timeout, options.stop);
  return out.size() >= 64 ? out.substr(0, 64) : "";
}

}  // namespace

std::string recorded_checksum_path(const std::string& remote) { return sibling(remote, ".", ".sha256"); }
std::string partial_copy_path(const std::string& remote) { return sibling(remote, ".", ".partial"); }

std::string remote_sha256(SshSession& session, const std::string& remote, uint64_t size_hint,
                          const std::atomic<int>* stop) {
  std::string q = shell_quote(home_relative(remote));
  auto r = session.exec(
      "test -f " + q + " || exit 3; (sha256sum " + q + " 2>/dev/null || shasum -a 256 " + q + ") | cut -d' ' -f1",
      hash_timeout(size_hint), stop);
  if (r.status == 3) return "";
  if (r.status != 0 || r.out.size() < 64)
    throw SshError(SshFailure::sftp, "cannot checksum " + remote + " on " + session.target().address() + ": " + r.err,
                   "install sha256sum (coreutils) or shasum on the node");
  return r.out.substr(0, 64);
}

UploadResult sftp_upload(SshSession& session, const std::string& local, const std::string& remote_path,
                         const UploadProgress& progress, const UploadOptions& options) {
  UploadResult result;
  std::error_code ec;
  result.size = std::filesystem::file_size(local, ec);
  if (ec) throw Error("cannot read " + local + ": " + ec.message());
  const std::string remote = home_relative(remote_path);
  const std::string node = session.target().address();
  auto mismatch = [&] {
    return SshError(
        SshFailure::sftp,
        "the copy of " + local + " on " + node + " at " + remote_path + " does not match its SHA-256 " + result.sha256,
        "check the node's disk (df, dmesg) and run the command again");
  };
  auto there = [&](bool by_record) {
    result.already_there = true;
    result.by_record = by_record;
    if (progress) progress(result.size, result.size);
    return result;
  };

  RemoteState st = query(session, remote);
  // The local checksum: recorded, or else hashed now when the node holds something to compare it
  // with; when it holds nothing, it is taken from the bytes as they are sent.
  if (auto recorded = options.cache_local_sha256 ? recorded_sha256_file(local) : std::nullopt)
    result.sha256 = *recorded;
  else if (st.has_file || st.has_partial)
    result.sha256 =
        options.cache_local_sha256 ? cached_sha256_file(local, options.stop) : sha256_file(local, options.stop);
  if (!result.sha256.empty()) {
    if (!options.verify && st.has_file && st.record == result.sha256 + " " + st.file_stat) return there(true);
    if (st.has_file && st.file_size == result.size &&
        remote_sha256(session, remote, result.size, options.stop) == result.sha256) {
      finish_and_record(session, remote, result.sha256, false);
      return there(false);
    }
    // A shorter partial copy is an interrupted copy of this file; so is a shorter target (written
    // in place by clusterctl before partial copies). A resumed copy that does not match (the
    // earlier partial was not a prefix of this file) is started over once, below.
    uint64_t from = 0;
    if (st.has_partial && st.partial_size > 0 && st.partial_size < result.size) {
      from = st.partial_size;
    } else if (st.has_file && st.file_size > 0 && st.file_size < result.size) {
      auto mv = session.exec("mv -f " + shell_quote(remote) + " " + shell_quote(partial_copy_path(remote)));
      if (mv.status == 0) from = st.file_size;
    }
    if (from > 0) {
      result.resumed_from = from;
      result.bytes_sent = append_from(session, local, remote, from, result.size, progress, options);
      if (remote_sha256(session, partial_copy_path(remote), result.size, options.stop) == result.sha256) {
        finish_and_record(session, remote, result.sha256, true);
        return result;
      }
      result.resumed_from = 0;
    }
  }
  Sha256 hash;
  const bool hash_here = result.sha256.empty();
  const auto mtime = std::filesystem::last_write_time(local, ec);
  const std::string remote_hash =
      send_fresh(session, local, remote, result.size, progress, hash_here ? &hash : nullptr, options);
  result.bytes_sent += result.size;
  if (hash_here) {
    result.sha256 = hash.hex_digest();
    // Recorded only for the file that was read (not one changed while it was sent).
    std::error_code ec2;
    if (options.cache_local_sha256 && !ec && std::filesystem::last_write_time(local, ec2) == mtime && !ec2 &&
        std::filesystem::file_size(local, ec2) == result.size && !ec2)
      record_sha256_file(local, result.sha256);
  }
  if (remote_hash != result.sha256) throw mismatch();
  finish_and_record(session, remote, result.sha256, true);
  return result;
}

}  // namespace clusterctl::ssh
