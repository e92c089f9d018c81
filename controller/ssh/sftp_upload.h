#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "controller/ssh/ssh_session.h"

namespace clusterctl::ssh {

struct UploadResult {
  uint64_t size = 0;           // bytes of the file
  uint64_t resumed_from = 0;   // bytes already on the node from an earlier, interrupted copy
  uint64_t bytes_sent = 0;     // bytes that went over the wire this time
  bool already_there = false;  // the node held an identical file: nothing was sent
  bool by_record = false;      // ... known from its recorded checksum, without rehashing it
  std::string sha256;          // of the local file, and (verified) of the remote one
};

// (bytes of the file now on the node, total bytes)
using UploadProgress = std::function<void(uint64_t done, uint64_t total)>;

struct UploadOptions {
  // Hash both ends in full even when the node's recorded checksum says the file is there.
  bool verify = false;
  // Keep the local file's checksum beside it (cached_sha256_file), so an unchanged file is not
  // hashed again by the next upload. (The controller's cut is.)
  bool cache_local_sha256 = false;
  // The copy fails (SshError naming the node) when the node takes no data for this long: a hung
  // disk or process on the node, or a link that stopped without closing.
  std::chrono::seconds stall_timeout{60};
  // When it turns non-zero (a signal noted), the copy or the node's checksum of it stops within
  // about a second with SshError(interrupted); a partial copy stays on the node, to be resumed.
  const std::atomic<int>* stop = nullptr;
};

// Copies `local` to `remote` on the node. The bytes stream over an SSH exec channel into
// `cat` (a POSIX shell on the node), so the link's speed is used rather than one round trip per
// 64 KiB as with libssh 0.10's SFTP writes.
//  - Resumable: bytes go into a hidden ".NAME.partial" next to the target; a shorter partial (or
//    a shorter target from an older clusterctl) is taken as an interrupted copy and appended to.
//  - Verified: the partial's SHA-256 (sha256sum or shasum on the node) must equal the local one,
//    else the copy is redone once from the start; only then is it renamed onto `remote`. When the
//    node holds nothing of the file, the local checksum is taken from the bytes as they are sent
//    (no separate pass over the file).
//  - Recorded: after a verified copy (or full check) ".NAME.sha256" next to the target holds the
//    checksum with the target's size, mtime, ctime and inode. While those still match and the
//    checksum is the local one, the file counts as there without hashing it again (by_record);
//    any change on the node (truncated, rewritten, replaced) makes it a full check.
//  - Skipped: a remote file of the same size and checksum is left alone.
// The remote folder is created. "~/" at the start of `remote` means the login user's home.
// Throws SshError(sftp).
UploadResult sftp_upload(SshSession& session, const std::string& local, const std::string& remote,
                         const UploadProgress& progress = {}, const UploadOptions& options = {});

// The SHA-256 of a file on the node, or "" when it does not exist. `size_hint` (bytes) makes the
// time allowed for hashing grow with the file.
std::string remote_sha256(SshSession& session, const std::string& remote, uint64_t size_hint = 0,
                          const std::atomic<int>* stop = nullptr);

// The hidden files kept next to a copied `remote` file on the node.
std::string recorded_checksum_path(const std::string& remote);  // ".NAME.sha256"
std::string partial_copy_path(const std::string& remote);       // ".NAME.partial"

}  // namespace clusterctl::ssh
