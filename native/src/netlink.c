/*
 * flowtrail's netlink binding: the thinnest layer that lets JavaScript read
 * the kernel's netfilter events. It opens NETLINK_NETFILTER sockets, joins
 * multicast groups, sends requests, and drains the socket in batches. All
 * parsing happens in TypeScript (src/netlink/).
 *
 * Why batches: at thousands of connections per second a listener's CPU is its
 * wakeups, not its parsing (docs/architecture.md). So when the socket becomes
 * readable we stop polling, wait one short tick so more messages queue up,
 * then drain everything with recvmmsg (non-blocking, until EAGAIN) into one
 * buffer and make ONE call into JavaScript with it.
 *
 * Threads: every function here runs on the JavaScript main thread, either
 * called from JavaScript or from a libuv callback on the main loop. There are
 * no worker threads and no locks.
 *
 * Errors: every failed N-API call throws a JavaScript exception (NAPI_CALL);
 * failed syscalls throw an Error whose `code` is the errno name (e.g.
 * "ENOBUFS") and whose `syscall` names the operation. ENOBUFS while draining
 * is an overrun (the kernel dropped events): it is counted and reported to
 * JavaScript through the overrun callback, never swallowed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "napi-util.h"

#ifndef NETLINK_NETFILTER
#define NETLINK_NETFILTER 12
#endif

/* recvmmsg slots per call and the size of each slot. Netlink dump replies
 * are at most a page or two (NLMSG_GOODSIZE); 64 KiB leaves room to spare. */
#define SLOTS 64
#define SLOT_BYTES (64 * 1024)
#define DEFAULT_BATCH_BYTES (4 * 1024 * 1024)

typedef struct {
  napi_env env;
  int fd;
  uint32_t portid;
  uv_poll_t poll;
  uv_timer_t timer;
  int handles_open; /* libuv handles not yet closed */
  int closing;
  int polling;
  int listening;
  uint32_t tick_ms;
  size_t batch_max;
  /* drain scratch */
  struct mmsghdr msgs[SLOTS];
  struct iovec iovs[SLOTS];
  unsigned char *slots;
  /* JS side */
  napi_ref on_batch;
  napi_ref on_overrun;
  napi_ref on_error;
  napi_ref self;
  napi_async_context async_ctx;
  /* counters */
  double overruns;
  double batches;
  double datagrams;
  double bytes;
  double recv_calls;
  double kernel_drops; /* last sk_drops read (kept after close) */
} nl_state;

static void read_kernel_drops(nl_state *st);

/* Builds Error(message) with .code = errno name, .errno, .syscall. */
static napi_value make_errno_error(napi_env env, int err, const char *syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "netlink %s failed: %s (%s)", syscall, strerror(err), errno_name(err));
  return make_error(env, err, syscall, msg);
}

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_value error = make_errno_error(env, err, syscall);
  if (error) napi_throw(env, error);
  return NULL;
}

static nl_state *unwrap(napi_env env, napi_value obj) {
  nl_state *st = NULL;
  if (napi_unwrap(env, obj, (void **)&st) != napi_ok || st == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a socket handle from open()");
    return NULL;
  }
  return st;
}

/* ---- calling into JavaScript (main thread, from libuv callbacks) ---------- */

static void report_error(nl_state *st, int err, const char *syscall) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(st->env, &scope) != napi_ok) return;
  napi_value error = make_errno_error(st->env, err, syscall);
  if (error) call_js(st->env, st->async_ctx, st->on_error, 1, &error);
  napi_close_handle_scope(st->env, scope);
}

static void deliver(nl_state *st, unsigned char *data, size_t len) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(st->env, &scope) != napi_ok) {
    free(data);
    return;
  }
  napi_value buf;
  /* Zero-copy: JavaScript owns the batch memory from here; freed by GC. */
  if (napi_create_external_buffer(st->env, len, data, free_external, NULL, &buf) != napi_ok) {
    free(data);
    napi_close_handle_scope(st->env, scope);
    return;
  }
  st->batches++;
  call_js(st->env, st->async_ctx, st->on_batch, 1, &buf);
  napi_close_handle_scope(st->env, scope);
}

static void report_overruns(nl_state *st, uint32_t count) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(st->env, &scope) != napi_ok) return;
  napi_value n;
  if (napi_create_uint32(st->env, count, &n) == napi_ok) call_js(st->env, st->async_ctx, st->on_overrun, 1, &n);
  napi_close_handle_scope(st->env, scope);
}

/* ---- draining ----------------------------------------------------------- */

static void start_polling(nl_state *st);

/* Drains the socket until EAGAIN into batches of at most batch_max bytes. */
static void drain(nl_state *st) {
  uint32_t overruns = 0;
  int fatal = 0;
  unsigned char *batch = NULL;
  size_t used = 0;
  for (;;) {
    if (st->closing) break;
    int n = recvmmsg(st->fd, st->msgs, SLOTS, MSG_DONTWAIT, NULL);
    st->recv_calls++;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        /* The kernel dropped messages for us: count, keep draining. */
        overruns++;
        st->overruns++;
        continue;
      }
      fatal = errno;
      break;
    }
    for (int i = 0; i < n; i++) {
      size_t len = st->msgs[i].msg_len;
      if (st->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        fatal = ENOSPC; /* as libmnl does: a truncated datagram is an error */
        break;
      }
      size_t padded = (len + 3u) & ~(size_t)3u; /* keep nlmsghdrs 4-aligned */
      if (batch != NULL && used + padded > st->batch_max) {
        deliver(st, batch, used);
        batch = NULL;
        used = 0;
        if (st->closing) break;
      }
      if (batch == NULL) {
        batch = malloc(st->batch_max > padded ? st->batch_max : padded);
        if (batch == NULL) {
          fatal = ENOMEM;
          break;
        }
      }
      memcpy(batch + used, st->iovs[i].iov_base, len);
      memset(batch + used + len, 0, padded - len);
      used += padded;
      st->datagrams++;
      st->bytes += (double)len;
      /* reset for the next recvmmsg */
      st->msgs[i].msg_hdr.msg_flags = 0;
    }
    if (fatal) break;
    if (n < SLOTS) {
      /* Short read: probably empty now; one more call confirms with EAGAIN. */
      continue;
    }
  }
  if (batch != NULL) {
    if (!st->closing && used > 0) {
      /* Shrink to fit: a batch lives until the GC frees it. */
      unsigned char *shrunk = realloc(batch, used);
      deliver(st, shrunk ? shrunk : batch, used);
    } else {
      free(batch);
    }
  }
  if (overruns > 0 && !st->closing) report_overruns(st, overruns);
  if (fatal && !st->closing) report_error(st, fatal, "recvmmsg");
}

static void on_timer(uv_timer_t *timer) {
  nl_state *st = (nl_state *)timer->data;
  if (st->closing) return;
  drain(st);
  if (!st->closing && st->listening) start_polling(st);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  nl_state *st = (nl_state *)poll->data;
  if (st->closing) return;
  uv_poll_stop(&st->poll);
  st->polling = 0;
  if (status < 0) {
    /* libuv reports EPOLLERR as UV_EBADF. On a netlink socket that is a
     * pending socket error (ENOBUFS after an overrun), which the drain below
     * reads, counts and clears: only a really bad fd is reported here. */
    if (status != UV_EBADF || fcntl(st->fd, F_GETFD) < 0) {
      report_error(st, -status, "poll");
      if (st->closing) return;
    }
  }
  if (st->tick_ms == 0) {
    on_timer(&st->timer);
  } else {
    /* Coalesce: let more messages arrive, then drain once. */
    uv_timer_start(&st->timer, on_timer, st->tick_ms, 0);
  }
}

static void start_polling(nl_state *st) {
  if (st->polling || st->closing) return;
  int r = uv_poll_start(&st->poll, UV_READABLE, on_readable);
  if (r < 0) {
    report_error(st, -r, "uv_poll_start");
    return;
  }
  st->polling = 1;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void release_js(nl_state *st) {
  napi_env env = st->env;
  if (st->on_batch) napi_delete_reference(env, st->on_batch);
  if (st->on_overrun) napi_delete_reference(env, st->on_overrun);
  if (st->on_error) napi_delete_reference(env, st->on_error);
  st->on_batch = st->on_overrun = st->on_error = NULL;
  if (st->async_ctx) napi_async_destroy(env, st->async_ctx);
  st->async_ctx = NULL;
}

static void maybe_free(nl_state *st) {
  /* Freed when both libuv handles are closed AND the JS wrapper was collected
   * (the finalizer sets self to NULL after closing). */
  if (st->handles_open == 0 && st->self == NULL) {
    free(st->slots);
    free(st);
  }
}

static void on_handle_closed(uv_handle_t *handle) {
  nl_state *st = (nl_state *)handle->data;
  st->handles_open--;
  /* The fd is closed only once libuv has let go of it: closing it earlier
   * lets a new socket reuse the number while epoll still watches the old one. */
  if (st->handles_open == 0 && st->fd >= 0) {
    read_kernel_drops(st);
    close(st->fd);
    st->fd = -1;
  }
  maybe_free(st);
}

static void close_state(nl_state *st) {
  if (st->closing) return;
  st->closing = 1;
  st->listening = 0;
  uv_poll_stop(&st->poll);
  uv_timer_stop(&st->timer);
  uv_close((uv_handle_t *)&st->poll, on_handle_closed);
  uv_close((uv_handle_t *)&st->timer, on_handle_closed);
  release_js(st);
}

static void cleanup_hook(void *arg) {
  nl_state *st = (nl_state *)arg;
  close_state(st);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  nl_state *st = (nl_state *)data;
  napi_remove_env_cleanup_hook(env, cleanup_hook, st);
  close_state(st);
  if (st->self) napi_delete_reference(env, st->self);
  st->self = NULL;
  maybe_free(st);
}

/* ---- exported functions ------------------------------------------------- */

/*
 * open({ groups?: number[], rcvbufBytes?: number, tickMs?: number,
 *        batchBytes?: number }, onBatch, onOverrun, onError) → handle
 * Opens and binds the socket and joins the groups; polling starts with listen().
 */
static napi_value nl_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "open(options, onBatch, onOverrun, onError) needs 4 arguments");
    return NULL;
  }
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "open(): options must be an object");
    return NULL;
  }
  for (int i = 1; i < 4; i++) {
    NAPI_CALL(env, napi_typeof(env, argv[i], &t));
    if (t != napi_function) {
      napi_throw_type_error(env, "ERR_INVALID_ARG", "open(): onBatch, onOverrun and onError must be functions");
      return NULL;
    }
  }
  uint32_t rcvbuf, tick_ms, batch_bytes;
  if (get_uint32_prop(env, argv[0], "rcvbufBytes", 32u * 1024u * 1024u, &rcvbuf) < 0) return NULL;
  if (get_uint32_prop(env, argv[0], "tickMs", 10, &tick_ms) < 0) return NULL;
  if (get_uint32_prop(env, argv[0], "batchBytes", DEFAULT_BATCH_BYTES, &batch_bytes) < 0) return NULL;
  if (batch_bytes < SLOT_BYTES) batch_bytes = SLOT_BYTES;

  /* groups */
  uint32_t groups[32];
  uint32_t ngroups = 0;
  bool has_groups = false;
  NAPI_CALL(env, napi_has_named_property(env, argv[0], "groups", &has_groups));
  if (has_groups) {
    napi_value arr;
    bool is_array = false;
    NAPI_CALL(env, napi_get_named_property(env, argv[0], "groups", &arr));
    NAPI_CALL(env, napi_is_array(env, arr, &is_array));
    if (!is_array) {
      napi_throw_type_error(env, "ERR_INVALID_ARG", "open(): groups must be an array of numbers");
      return NULL;
    }
    NAPI_CALL(env, napi_get_array_length(env, arr, &ngroups));
    if (ngroups > 32) {
      napi_throw_range_error(env, "ERR_INVALID_ARG", "open(): at most 32 groups");
      return NULL;
    }
    for (uint32_t i = 0; i < ngroups; i++) {
      napi_value g;
      NAPI_CALL(env, napi_get_element(env, arr, i, &g));
      NAPI_CALL(env, napi_typeof(env, g, &t));
      if (t != napi_number) {
        napi_throw_type_error(env, "ERR_INVALID_ARG", "open(): groups must be an array of numbers");
        return NULL;
      }
      NAPI_CALL(env, napi_get_value_uint32(env, g, &groups[i]));
      if (groups[i] == 0) {
        napi_throw_range_error(env, "ERR_INVALID_ARG", "open(): group numbers start at 1");
        return NULL;
      }
    }
  }

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int size = (int)rcvbuf;
  /* SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it fall back to the capped SO_RCVBUF. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt(SO_RCVBUF)");
  }
  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  socklen_t alen = sizeof addr;
  if (getsockname(fd, (struct sockaddr *)&addr, &alen) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "getsockname");
  }
  for (uint32_t i = 0; i < ngroups; i++) {
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof groups[i]) < 0) {
      int err = errno;
      close(fd);
      return throw_errno(env, err, "setsockopt(NETLINK_ADD_MEMBERSHIP)");
    }
  }

  nl_state *st = calloc(1, sizeof *st);
  unsigned char *slots = malloc((size_t)SLOTS * SLOT_BYTES);
  if (st == NULL || slots == NULL) {
    free(st);
    free(slots);
    close(fd);
    return throw_errno(env, ENOMEM, "malloc");
  }
  st->env = env;
  st->fd = fd;
  st->portid = addr.nl_pid;
  st->tick_ms = tick_ms;
  st->batch_max = batch_bytes;
  st->slots = slots;
  for (int i = 0; i < SLOTS; i++) {
    st->iovs[i].iov_base = slots + (size_t)i * SLOT_BYTES;
    st->iovs[i].iov_len = SLOT_BYTES;
    st->msgs[i].msg_hdr.msg_iov = &st->iovs[i];
    st->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &st->poll, fd) != 0) {
    close(fd);
    free(slots);
    free(st);
    napi_throw_error(env, "ERR_UV", "cannot initialise libuv handles for the netlink socket");
    return NULL;
  }
  /* From here the loop holds the poll handle: st and the fd may only go in
   * its close callback (on_handle_closed), never by free()/close() here. */
  st->handles_open = 1;
  st->poll.data = st;
  if (uv_timer_init(loop, &st->timer) != 0) {
    st->closing = 1;
    uv_close((uv_handle_t *)&st->poll, on_handle_closed);
    napi_throw_error(env, "ERR_UV", "cannot initialise libuv handles for the netlink socket");
    return NULL;
  }
  st->handles_open = 2;
  st->timer.data = st;
  /* Idle sockets must not keep the process alive on their own. */
  uv_unref((uv_handle_t *)&st->poll);
  uv_unref((uv_handle_t *)&st->timer);

/* A failed N-API call throws and closes the handles; their close callbacks
 * release the fd, and the state once the wrapper (if any) is finalized. */
#define OPEN_CALL(call)                                                        \
  do {                                                                         \
    napi_status status_ = (call);                                              \
    if (status_ != napi_ok) {                                                  \
      throw_last_napi_error(env, #call);                                       \
      close_state(st);                                                         \
      return NULL;                                                             \
    }                                                                          \
  } while (0)
  OPEN_CALL(napi_create_reference(env, argv[1], 1, &st->on_batch));
  OPEN_CALL(napi_create_reference(env, argv[2], 1, &st->on_overrun));
  OPEN_CALL(napi_create_reference(env, argv[3], 1, &st->on_error));
  napi_value resource_name;
  OPEN_CALL(napi_create_string_utf8(env, "flowtrail:netlink", NAPI_AUTO_LENGTH, &resource_name));
  OPEN_CALL(napi_create_object(env, &self));
  OPEN_CALL(napi_async_init(env, self, resource_name, &st->async_ctx));
  OPEN_CALL(napi_wrap(env, self, st, finalize, NULL, &st->self));
  OPEN_CALL(napi_add_env_cleanup_hook(env, cleanup_hook, st));
  napi_value pid;
  OPEN_CALL(napi_create_uint32(env, st->portid, &pid));
  OPEN_CALL(napi_set_named_property(env, self, "portid", pid));
#undef OPEN_CALL
  return self;
}

/* listen(handle, ref: boolean): start delivering batches; ref keeps the loop alive. */
static napi_value nl_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "listen(handle, ref) needs a handle");
    return NULL;
  }
  nl_state *st = unwrap(env, argv[0]);
  if (st == NULL) return NULL;
  if (st->closing) return throw_errno(env, EBADF, "listen");
  bool ref;
  if (get_ref_arg(env, argc, argv, &ref) != 0) return NULL;
  if (ref) {
    uv_ref((uv_handle_t *)&st->poll);
    uv_ref((uv_handle_t *)&st->timer);
  } else {
    uv_unref((uv_handle_t *)&st->poll);
    uv_unref((uv_handle_t *)&st->timer);
  }
  st->listening = 1;
  start_polling(st);
  return NULL;
}

/* send(handle, buffer): one netlink request (to the kernel, portid 0). */
static napi_value nl_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "send(handle, buffer) needs 2 arguments");
    return NULL;
  }
  nl_state *st = unwrap(env, argv[0]);
  if (st == NULL) return NULL;
  if (st->closing) return throw_errno(env, EBADF, "send");
  bool is_buffer = false;
  NAPI_CALL(env, napi_is_buffer(env, argv[1], &is_buffer));
  if (!is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "send(): the request must be a Buffer");
    return NULL;
  }
  void *data;
  size_t len;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &data, &len));
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(st->fd, data, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, errno, "sendto");
  return NULL;
}

/*
 * drain(handle): drains the socket now, delivering what is queued through
 * onBatch before returning (re-entrantly, from this call). The agent calls
 * it on the event socket before it reads each dump batch, so that every
 * event queued before the batch was generated is read first.
 */
static napi_value nl_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "drain(handle) needs a handle");
    return NULL;
  }
  nl_state *st = unwrap(env, argv[0]);
  if (st == NULL) return NULL;
  if (st->closing) return throw_errno(env, EBADF, "drain");
  if (st->listening) drain(st);
  return NULL;
}

/* close(handle): idempotent; no callback runs after it returns. */
static napi_value nl_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "close(handle) needs a handle");
    return NULL;
  }
  nl_state *st = unwrap(env, argv[0]);
  if (st == NULL) return NULL;
  close_state(st);
  return NULL;
}

/* The kernel's own count of messages it could not queue on this socket
 * (sk_drops, via SO_MEMINFO): ENOBUFS says that events were lost, this says
 * how many. The last value read is kept once the socket is closed. */
static void read_kernel_drops(nl_state *st) {
  if (st->fd < 0) return;
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  if (getsockopt(st->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 &&
      len > SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    st->kernel_drops = mem[SK_MEMINFO_DROPS];
  }
}

/* stats(handle) → { overruns, batches, datagrams, bytes, recvCalls, kernelDrops } */
static napi_value nl_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "stats(handle) needs a handle");
    return NULL;
  }
  nl_state *st = unwrap(env, argv[0]);
  if (st == NULL) return NULL;
  read_kernel_drops(st);
  NAPI_CALL(env, napi_create_object(env, &out));
  const struct {
    const char *name;
    double value;
  } fields[] = {{"overruns", st->overruns}, {"batches", st->batches}, {"datagrams", st->datagrams},
                {"bytes", st->bytes}, {"recvCalls", st->recv_calls},
                {"kernelDrops", st->kernel_drops}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    NAPI_CALL(env, napi_create_double(env, fields[i].value, &v));
    NAPI_CALL(env, napi_set_named_property(env, out, fields[i].name, v));
  }
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
#ifdef __GLIBC__
  /*
   * A fixed mmap threshold: glibc raises it to the size of every large block
   * freed (our 4 MiB receive slots per socket, one socket per dump), after
   * which such blocks come from the heap and fragment it. Measured in two
   * 10-minute soaks side by side: memory outside the JavaScript heap grew
   * 53 MiB without this and 21 MiB with it (RSS max 193 against 152 MiB).
   *
   * This is process-wide (glibc has no per-library threshold) and deliberate:
   * the addon is loaded by the flowtrail agent and its CLI only, never as a
   * library inside someone else's process. For the rest of the process it
   * means every block of 128 KiB or more is mmap'd and returned to the
   * kernel on free, instead of the heap growing to the largest block freed;
   * V8's heap pages are mmap'd by V8 itself and are not affected.
   */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  const napi_property_descriptor props[] = {
      {"open", NULL, nl_open, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, nl_listen, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, nl_send, NULL, NULL, NULL, napi_default, NULL},
      {"drain", NULL, nl_drain, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, nl_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, nl_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
