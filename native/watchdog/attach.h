// The attach protocol of `gmr <pid>` (src/cli.ts), after the JVM's: the CLI
// leaves a request file in a per-user directory, then sends the report
// signal; the watchdog, woken by the signal, takes the request and the report
// is written where it asks instead of where reports usually go.
//
//   /tmp/guru-meditation-<uid>/            mode 0700, owned by <uid>
//     <pid>.request                        "out=<name>\nformat=text|json\ntimeout=<s>\n"
//     <pid>.<cli pid>.<nonce>.report       the report, written by the target
//
// The request is honoured only when the directory and the file belong to
// this process's effective user, are no symbolic links, and the directory
// is writable by no one else; the output must be a plain name inside the
// directory. The request file is removed when taken. One whose gmr is gone
// (its pid, in the output's name, no longer exists) or older than the
// timeout it states is stale: removed, and the report goes where reports
// go. Each request ignored so is said in one line on stderr.
#pragma once

#include <string>

namespace gmr {

struct AttachRequest {
  std::string out_path;  // absolute, inside the attach directory
  std::string format;    // "text", "json" or "" (the configured one)
};

// The attach directory of this process's effective user.
std::string AttachDirectory();

// On the watchdog thread, after a report signal: takes this process's
// request, if there is a valid one. Never follows a symbolic link.
bool TakeAttachRequest(AttachRequest* out);

}  // namespace gmr
