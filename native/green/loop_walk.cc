#include "loop_walk.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdlib>

#include "../isolates/registry.h"
#include "../util/proc.h"
#include "../util/safe_read.h"

namespace gmr {
namespace {

// libuv's own flag bits (uv-common.h), unchanged through libuv 1.x.
constexpr unsigned kClosing = 0x01, kClosed = 0x02, kActive = 0x04, kRef = 0x08, kInternal = 0x10;
// A list longer than this is taken as corrupt (or as more than a report
// should walk).
constexpr size_t kMaxWalk = 100000;
constexpr size_t kMaxPath = 4096;
// Node's own handles sit in the first kilobyte of its Environment (offsets
// 224 to 856 on Node 20); the whole object is some kilobytes, so a handle
// this close is one of its members, not a neighbour on the heap.
constexpr intptr_t kEnvironmentBytes = 4096;

// The system call numbers a libuv loop waits in (as /proc/TID/syscall
// gives them). AArch64 has no epoll_wait: glibc's calls epoll_pwait.
#if defined(__aarch64__)
constexpr long kEpollWait = -2, kEpollPwait = 22, kEpollPwait2 = 441;
#else
constexpr long kEpollWait = 232, kEpollPwait = 281, kEpollPwait2 = 441;
#endif

std::string Address(const sockaddr_storage& ss, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    std::string out = "[";  // appended: GCC 12 warns falsely (-Wrestrict) on "[" + std::string
    out.append(host).append("]:").append(std::to_string(ntohs(in6->sin6_port)));
    return out;
  }
  if (ss.ss_family == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return "";
    if (un->sun_path[0] == '\0') return std::string("@").append(un->sun_path + 1, n - 1);  // abstract
    return std::string(un->sun_path, strnlen(un->sun_path, n));
  }
  return "";
}

// The fd is this process's own: the kernel answers for it, whatever the
// loop's thread is doing.
void DescribeSocket(int fd, HandleInfo* h) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) h->local = Address(ss, len);
  len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) h->remote = Address(ss, len);
  int listening = 0;
  len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0) h->listening = listening != 0;
}

uint64_t NowMs() { return uv_hrtime() / 1000000; }

// `copy` holds the handle's bytes; pointers in it point into the live process.
void Describe(const uv_any_handle& copy, uv_handle_type type, HandleInfo* h) {
  const uv_handle_t& base = copy.handle;
  h->type = uv_handle_type_name(type) ? uv_handle_type_name(type) : "unknown";
  h->active = base.flags & kActive;
  h->ref = base.flags & kRef;
  h->closing = base.flags & (kClosing | kClosed);
  uv_os_fd_t fd;
  // uv_fileno reads the copy's own fields: no pointer is followed.
  if (uv_fileno(&base, &fd) == 0) h->fd = fd;
  switch (type) {
    case UV_TCP:
    case UV_NAMED_PIPE:
    case UV_UDP:
      if (h->fd >= 0) DescribeSocket(h->fd, h);
      if (type != UV_UDP) h->write_queue_bytes = copy.stream.write_queue_size;
      break;
    case UV_TTY:
      h->write_queue_bytes = copy.stream.write_queue_size;
      break;
    case UV_TIMER:
      if (h->active) {
        // The timer's due time is on the loop's clock (milliseconds of the
        // monotonic clock); compared with now, not with the loop's cached
        // time, which a stuck loop stopped updating.
        h->has_due = true;
        h->due_in_ms = static_cast<int64_t>(copy.timer.timeout) - static_cast<int64_t>(NowMs());
      }
      h->repeat_ms = copy.timer.repeat;
      break;
    case UV_PROCESS:
      h->pid = copy.process.pid;
      break;
    case UV_SIGNAL:
      h->signum = copy.signal.signum;
      break;
    case UV_FS_EVENT:
      h->path = SafeReadString(reinterpret_cast<uintptr_t>(copy.fs_event.path), kMaxPath);
      break;
    default:
      break;
  }
}

}  // namespace

bool WaitingOnLoop(int tid, int backend_fd) {
  std::string text = ReadProcFile("/proc/self/task/" + std::to_string(tid) + "/syscall");
  char* end = nullptr;
  long nr = strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || (nr != kEpollWait && nr != kEpollPwait && nr != kEpollPwait2)) return false;
  unsigned long fd = strtoul(end, nullptr, 16);
  return backend_fd >= 0 && fd == static_cast<unsigned long>(backend_fd);
}

LoopInfo WalkLoop(const uv_loop_t* loop, const void* environment, size_t max_details) {
  LoopInfo out;
  uv_loop_t l;
  if (!SafeRead(loop, &l)) {
    out.problem = "the loop could not be read";
    return out;
  }
  out.active_handles = l.active_handles;
  out.active_requests = l.active_reqs.count;
  out.clock_age_ms = static_cast<int64_t>(NowMs()) - static_cast<int64_t>(l.time);

  const uv__queue* head = &loop->handle_queue;  // its address in the live loop
  const uv__queue* prev = head;
  const uv__queue* node = l.handle_queue.next;
  size_t walked = 0;
  while (node != head) {
    if (++walked > kMaxWalk) {
      out.problem = "the handle list is longer than " + std::to_string(kMaxWalk) + ": not walked further";
      break;
    }
    uv__queue link;
    // Each link must point back where it came from: a list changed under
    // the walk stops it rather than sending it into freed memory.
    if (!SafeRead(node, &link) || link.prev != prev) {
      out.problem = "the handle list changed while it was read";
      break;
    }
    auto* handle = reinterpret_cast<const uv_handle_t*>(
        reinterpret_cast<const char*>(node) - offsetof(uv_handle_t, handle_queue));
    uv_handle_t header;
    if (!SafeRead(handle, &header)) {
      out.problem = "a handle could not be read";
      break;
    }
    prev = node;
    node = link.next;
    // What uv_walk skips: libuv's own handles (its signal pipe, async wakeup).
    if (header.flags & kInternal) continue;
    if (out.handles.size() >= max_details) {
      out.more++;
      continue;
    }
    uv_any_handle copy;
    size_t size = uv_handle_size(header.type);
    if (size == static_cast<size_t>(-1) || size > sizeof copy || !SafeRead(reinterpret_cast<uintptr_t>(handle), &copy, size)) {
      out.problem = "a handle could not be read";
      break;
    }
    HandleInfo h;
    Describe(copy, header.type, &h);
    auto offset = reinterpret_cast<intptr_t>(handle) - reinterpret_cast<intptr_t>(environment);
    if (environment && offset >= 0 && offset < kEnvironmentBytes) h.environment_offset = offset;
    out.handles.push_back(std::move(h));
  }
  return out;
}

std::vector<LoopInfo> WalkLoops(size_t max_details) {
  std::vector<LoopInfo> out;
  std::vector<v8::Isolate*> isolates;
  ForEachLoop([&](const LoopOwner& o) {
    LoopInfo info = WalkLoop(o.loop, o.environment, max_details);
    info.tid = o.tid;
    info.thread_id = o.thread_id;
    info.backend_fd = uv_backend_fd(o.loop);
    info.waiting = WaitingOnLoop(o.tid, info.backend_fd);
    out.push_back(std::move(info));
    isolates.push_back(o.isolate);
  });
  // Outside the registry lock, which every JavaScript thread answering a
  // report's interrupt takes: the trackers' tables have locks of their own
  // (an isolate gone meanwhile has none left), and naming promise sites may
  // wait for a code map's lock.
  for (size_t i = 0; i < out.size(); i++) {
    out[i].promises = SummarizePromises(isolates[i], max_details);
    out[i].timers = SummarizeTimers(isolates[i], max_details);
  }
  return out;
}

}  // namespace gmr
