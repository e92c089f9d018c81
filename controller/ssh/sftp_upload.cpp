#include "controller/ssh/sftp_upload.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "controller/ssh/sha256.h"

namespace clusterctl::ssh {
namespace {

// SFTP and the remote shell both start in the login user's home, so "~/x" is just "x".
std::string home_relative(const std::string& remote) { return remote.starts_with("~/") ? remote.substr(2) : remote; }

class Sftp {
 public:
  Sftp(SshSession& session, std::string node) : node_(std::move(node)) {
    sftp_ = sftp_new(static_cast<ssh_session>(session.native_handle()));
    if (!sftp_ || sftp_init(sftp_) != SSH_OK)
      fail("cannot start SFTP", "enable the sftp subsystem in the node's sshd_config (Subsystem sftp ...)");
  }
  ~Sftp() {
    if (sftp_) sftp_free(sftp_);
  }
  sftp_session get() const { return sftp_; }

  [[noreturn]] void fail(const std::string& what, const std::string& fix = "") const {
    std::string why = sftp_ ? " (SFTP error " + std::to_string(sftp_get_error(sftp_)) + ")" : "";
    throw SshError(SshFailure::sftp, what + " on " + node_ + why,
                   fix.empty() ? "check free disk space and permissions of the cache folder on the node" : fix);
  }

  // Size of a remote file, or -1 when it does not exist.
  int64_t size_of(const std::string& path) const {
    sftp_attributes a = sftp_stat(sftp_, path.c_str());
    if (!a) return -1;
    int64_t size = int64_t(a->size);
    sftp_attributes_free(a);
    return size;
  }

 private:
  sftp_session sftp_ = nullptr;
  std::string node_;
};

// Writes local[from..end) into remote at offset `from` (from == 0 truncates).
uint64_t copy_from(Sftp& sftp, const std::string& local, const std::string& remote, uint64_t from, uint64_t total,
                   const UploadProgress& progress) {
  int flags = O_WRONLY | O_CREAT | (from == 0 ? O_TRUNC : 0);
  sftp_file file = sftp_open(sftp.get(), remote.c_str(), flags, 0644);
  if (!file) sftp.fail("cannot open " + remote + " for writing");
  struct Closer {
    sftp_file f;
    ~Closer() { sftp_close(f); }
  } closer{file};
  if (from > 0 && sftp_seek64(file, from) != 0) sftp.fail("cannot seek to byte " + std::to_string(from) + " of " + remote);
  std::ifstream in(local, std::ios::binary);
  in.seekg(std::streamoff(from));
  std::vector<char> buf(1 << 16);  // below libssh's per-packet limit, which splits larger writes anyway
  uint64_t sent = 0;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    auto n = size_t(in.gcount());
    for (size_t off = 0; off < n;) {
      ssize_t w = sftp_write(file, buf.data() + off, n - off);
      if (w <= 0) sftp.fail("writing " + remote + " failed after " + std::to_string(from + sent + off) + " bytes");
      off += size_t(w);
    }
    sent += n;
    if (progress) progress(from + sent, total);
  }
  return sent;
}

}  // namespace

std::string remote_sha256(SshSession& session, const std::string& remote) {
  std::string q = shell_quote(home_relative(remote));
  auto r = session.exec("test -f " + q + " || exit 3; (sha256sum " + q + " 2>/dev/null || shasum -a 256 " + q +
                        ") | cut -d' ' -f1");
  if (r.status == 3) return "";
  if (r.status != 0 || r.out.size() < 64)
    throw SshError(SshFailure::sftp, "cannot checksum " + remote + " on " + session.target().address() + ": " + r.err,
                   "install sha256sum (coreutils) or shasum on the node");
  return r.out.substr(0, 64);
}

UploadResult sftp_upload(SshSession& session, const std::string& local, const std::string& remote_path,
                         const UploadProgress& progress) {
  UploadResult result;
  std::error_code ec;
  result.size = std::filesystem::file_size(local, ec);
  if (ec) throw Error("cannot read " + local + ": " + ec.message());
  result.sha256 = sha256_file(local);
  const std::string remote = home_relative(remote_path);
  const std::string node = session.target().address();

  auto dir = std::filesystem::path(remote).parent_path().string();
  if (!dir.empty()) {
    auto r = session.exec("mkdir -p " + shell_quote(dir));
    if (r.status != 0)
      throw SshError(SshFailure::sftp, "cannot create " + dir + " on " + node + ": " + r.err,
                     "choose a writable 'cache_dir' in the cluster file");
  }
  Sftp sftp(session, node);
  int64_t existing = sftp.size_of(remote);
  if (existing == int64_t(result.size) && remote_sha256(session, remote) == result.sha256) {
    result.already_there = true;
    if (progress) progress(result.size, result.size);
    return result;
  }
  // A shorter file is an interrupted copy of this one; anything else is replaced.
  uint64_t from = existing > 0 && existing < int64_t(result.size) ? uint64_t(existing) : 0;
  result.resumed_from = from;
  result.bytes_sent = copy_from(sftp, local, remote, from, result.size, progress);
  if (remote_sha256(session, remote) == result.sha256) return result;
  if (from > 0) {  // the earlier partial copy was not a prefix of this file: start over once
    result.resumed_from = 0;
    result.bytes_sent += copy_from(sftp, local, remote, 0, result.size, progress);
    if (remote_sha256(session, remote) == result.sha256) return result;
  }
  throw SshError(SshFailure::sftp, "the copy of " + local + " on " + node + " at " + remote_path +
                                       " does not match its SHA-256 " + result.sha256,
                 "check the node's disk (df, dmesg) and run the command again");
}

}  // namespace clusterctl::ssh
