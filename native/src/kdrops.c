/*
 * flowtrail's kernel drop source: loads the skb:kfree_skb BPF program
 * (native/bpf/kfree_skb.bpf.c, embedded as a libbpf skeleton at build time),
 * attaches it, and hands JavaScript the drop events from its ring buffer in
 * batches. Decoding happens in TypeScript (src/kdrops/decode.ts).
 *
 * Batches, as in netlink.c: when the ring buffer becomes readable we stop
 * polling, wait one short tick so more events queue up, then consume
 * everything into one buffer and make ONE call into JavaScript with it.
 *
 * Threads: every function here runs on the JavaScript main thread (called
 * from JavaScript, or from a libuv callback on the main loop). No locks.
 *
 * Errors: failed N-API calls throw (NAPI_CALL); failed libbpf calls throw an
 * Error whose `code` is the errno name and whose message carries libbpf's
 * last log lines (the verifier's or the loader's reason).
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "napi-util.h"
#include "kdrops.skel.h"

#define EVENT_BYTES 48
#define DEFAULT_RING_BYTES (4u * 1024u * 1024u)
#define DEFAULT_BATCH_EVENTS 8192u

typedef struct {
  napi_env env;
  struct kdrops_bpf *skel;
  struct ring_buffer *rb;
  uv_poll_t poll;
  uv_timer_t timer;
  int handles_open;
  int closing;
  int polling;
  int listening;
  uint32_t tick_ms;
  /* the batch being filled by the ring buffer callback */
  unsigned char *batch;
  size_t used;
  size_t batch_max;
  napi_ref on_batch;
  napi_ref on_error;
  napi_ref self;
  napi_async_context async_ctx;
  double events;
  double batches;
  double wakeups;
} kd_state;

/* ---- libbpf's log: the tail is kept for error messages ------------------- */

static char libbpf_log[2048];
static size_t libbpf_log_len;

static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n <= 0) return 0;
  size_t len = strnlen(line, sizeof line);
  if (len >= sizeof libbpf_log) len = sizeof libbpf_log - 1;
  if (libbpf_log_len + len >= sizeof libbpf_log) {
    /* keep the newest lines: drop the oldest half */
    size_t keep = libbpf_log_len / 2;
    memmove(libbpf_log, libbpf_log + libbpf_log_len - keep, keep);
    libbpf_log_len = keep;
  }
  memcpy(libbpf_log + libbpf_log_len, line, len);
  libbpf_log_len += len;
  libbpf_log[libbpf_log_len] = '\0';
  return 0;
}

static napi_value throw_libbpf(napi_env env, int err, const char *operation) {
  char msg[2600];
  snprintf(msg, sizeof msg, "kernel drops: %s failed: %s (%s)%s%s", operation, strerror(err), errno_name(err),
           libbpf_log_len ? "; libbpf: " : "", libbpf_log_len ? libbpf_log : "");
  napi_value error = make_error(env, err, operation, msg);
  if (error) napi_throw(env, error);
  return NULL;
}

static kd_state *unwrap(napi_env env, napi_value obj) {
  kd_state *st = NULL;
  if (napi_unwrap(env, obj, (void **)&st) != napi_ok || st == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a handle from open()");
    return NULL;
  }
  return st;
}

/* ---- delivering batches (main thread) ------------------------------------ */

static void deliver(kd_state *st) {
  unsigned char *data = st->batch;
  size_t len = st->used;
  st->batch = NULL;
  st->used = 0;
  if (data == NULL || len == 0) {
    free(data);
    return;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(st->env, &scope) != napi_ok) {
    free(data);
    return;
  }
  napi_value buf;
  /* Zero-copy: JavaScript owns the batch from here; freed by the GC. */
  if (napi_create_external_buffer(st->env, len, data, free_external, NULL, &buf) != napi_ok) {
    free(data);
    napi_close_handle_scope(st->env, scope);
    return;
  }
  st->batches++;
  call_js(st->env, st->async_ctx, st->on_batch, 1, &buf);
  napi_close_handle_scope(st->env, scope);
}

static void report_error(kd_state *st, int err, const char *operation) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(st->env, &scope) != napi_ok) return;
  char msg[256];
  snprintf(msg, sizeof msg, "kernel drops: %s failed: %s (%s)", operation, strerror(err), errno_name(err));
  napi_value error = make_error(st->env, err, operation, msg);
  if (error) call_js(st->env, st->async_ctx, st->on_error, 1, &error);
  napi_close_handle_scope(st->env, scope);
}

/* The ring buffer's callback, inside ring_buffer__consume: copy one event. */
static int on_event(void *ctx, void *data, size_t size) {
  kd_state *st = ctx;
  if (st->closing) return -ECANCELED;
  if (size < EVENT_BYTES) return 0; /* never: the program submits fixed-size records */
  if (st->batch != NULL && st->used + EVENT_BYTES > st->batch_max) deliver(st);
  if (st->closing) return -ECANCELED;
  if (st->batch == NULL) {
    st->batch = malloc(st->batch_max);
    if (st->batch == NULL) return -ENOMEM;
  }
  memcpy(st->batch + st->used, data, EVENT_BYTES);
  st->used += EVENT_BYTES;
  st->events++;
  return 0;
}

static void start_polling(kd_state *st);

static void on_timer(uv_timer_t *timer) {
  kd_state *st = timer->data;
  if (st->closing) return;
  int n = ring_buffer__consume(st->rb);
  if (n < 0 && n != -ECANCELED && !st->closing) report_error(st, -n, "ring_buffer__consume");
  if (!st->closing) {
    if (st->used > 0) {
      /* Shrink to fit: a batch lives until the GC frees it. */
      unsigned char *shrunk = realloc(st->batch, st->used);
      if (shrunk) st->batch = shrunk;
    }
    deliver(st);
  }
  if (!st->closing && st->listening) start_polling(st);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  kd_state *st = poll->data;
  if (st->closing) return;
  uv_poll_stop(&st->poll);
  st->polling = 0;
  st->wakeups++;
  if (status < 0) {
    report_error(st, -status, "poll");
    if (st->closing) return;
  }
  if (st->tick_ms == 0) on_timer(&st->timer);
  else uv_timer_start(&st->timer, on_timer, st->tick_ms, 0); /* coalesce */
}

static void start_polling(kd_state *st) {
  if (st->polling || st->closing) return;
  int r = uv_poll_start(&st->poll, UV_READABLE, on_readable);
  if (r < 0) {
    report_error(st, -r, "uv_poll_start");
    return;
  }
  st->polling = 1;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void maybe_free(kd_state *st) {
  if (st->handles_open == 0 && st->self == NULL) {
    free(st->batch);
    free(st);
  }
}

static void on_handle_closed(uv_handle_t *handle) {
  kd_state *st = handle->data;
  st->handles_open--;
  /* The ring buffer's epoll fd is closed only once libuv has let go of it. */
  if (st->handles_open == 0) {
    ring_buffer__free(st->rb);
    st->rb = NULL;
    kdrops_bpf__destroy(st->skel); /* detaches the program */
    st->skel = NULL;
  }
  maybe_free(st);
}

static void close_state(kd_state *st) {
  if (st->closing) return;
  st->closing = 1;
  st->listening = 0;
  uv_poll_stop(&st->poll);
  uv_timer_stop(&st->timer);
  uv_close((uv_handle_t *)&st->poll, on_handle_closed);
  uv_close((uv_handle_t *)&st->timer, on_handle_closed);
  napi_env env = st->env;
  if (st->on_batch) napi_delete_reference(env, st->on_batch);
  if (st->on_error) napi_delete_reference(env, st->on_error);
  st->on_batch = st->on_error = NULL;
  if (st->async_ctx) napi_async_destroy(env, st->async_ctx);
  st->async_ctx = NULL;
}

static void cleanup_hook(void *arg) { close_state(arg); }

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  kd_state *st = data;
  napi_remove_env_cleanup_hook(env, cleanup_hook, st);
  close_state(st);
  if (st->self) napi_delete_reference(env, st->self);
  st->self = NULL;
  maybe_free(st);
}

/* ---- exported functions ---------------------------------------------------- */

/*
 * open({ netns: number, tickMs?: number, ringBytes?: number, batchEvents?: number },
 *      onBatch, onError) → handle
 * Loads and attaches the program; events flow once listen() is called.
 * netns 0 keeps every network namespace.
 */
static napi_value kd_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "open(options, onBatch, onError) needs 3 arguments");
    return NULL;
  }
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "open(): options must be an object");
    return NULL;
  }
  for (int i = 1; i < 3; i++) {
    NAPI_CALL(env, napi_typeof(env, argv[i], &t));
    if (t != napi_function) {
      napi_throw_type_error(env, "ERR_INVALID_ARG", "open(): onBatch and onError must be functions");
      return NULL;
    }
  }
  uint32_t netns, tick_ms, ring_bytes, batch_events;
  if (get_uint32_prop(env, argv[0], "netns", 0, &netns) < 0) return NULL;
  if (get_uint32_prop(env, argv[0], "tickMs", 10, &tick_ms) < 0) return NULL;
  if (get_uint32_prop(env, argv[0], "ringBytes", DEFAULT_RING_BYTES, &ring_bytes) < 0) return NULL;
  if (get_uint32_prop(env, argv[0], "batchEvents", DEFAULT_BATCH_EVENTS, &batch_events) < 0) return NULL;
  /* A BPF ring buffer is a power of two pages. */
  if (ring_bytes < 4096 || (ring_bytes & (ring_bytes - 1)) != 0) {
    napi_throw_range_error(env, "ERR_INVALID_ARG", "open(): ringBytes must be a power of two of at least 4096");
    return NULL;
  }
  if (batch_events == 0) batch_events = 1;

  libbpf_set_print(on_libbpf_print);
  libbpf_log_len = 0;
  libbpf_log[0] = '\0';
  struct kdrops_bpf *skel = kdrops_bpf__open();
  if (skel == NULL) return throw_libbpf(env, errno, "open");
  skel->rodata->target_netns = netns;
  int err = bpf_map__set_max_entries(skel->maps.events, ring_bytes);
  if (err == 0) err = kdrops_bpf__load(skel);
  if (err != 0) {
    kdrops_bpf__destroy(skel);
    return throw_libbpf(env, -err, "load");
  }
  err = kdrops_bpf__attach(skel);
  if (err != 0) {
    kdrops_bpf__destroy(skel);
    return throw_libbpf(env, -err, "attach (tp_btf/kfree_skb)");
  }
  kd_state *st = calloc(1, sizeof *st);
  if (st == NULL) {
    kdrops_bpf__destroy(skel);
    return throw_libbpf(env, ENOMEM, "calloc");
  }
  st->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, st, NULL);
  if (st->rb == NULL) {
    int e = errno;
    kdrops_bpf__destroy(skel);
    free(st);
    return throw_libbpf(env, e, "ring_buffer__new");
  }
  st->env = env;
  st->skel = skel;
  st->tick_ms = tick_ms;
  st->batch_max = (size_t)batch_events * EVENT_BYTES;
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok ||
      uv_poll_init(loop, &st->poll, ring_buffer__epoll_fd(st->rb)) != 0 || uv_timer_init(loop, &st->timer) != 0) {
    ring_buffer__free(st->rb);
    kdrops_bpf__destroy(skel);
    free(st);
    napi_throw_error(env, "ERR_UV", "cannot initialise libuv handles for the drop ring buffer");
    return NULL;
  }
  st->handles_open = 2;
  st->poll.data = st;
  st->timer.data = st;
  uv_unref((uv_handle_t *)&st->poll);
  uv_unref((uv_handle_t *)&st->timer);

  NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &st->on_batch));
  NAPI_CALL(env, napi_create_reference(env, argv[2], 1, &st->on_error));
  napi_value resource_name;
  NAPI_CALL(env, napi_create_string_utf8(env, "flowtrail:kdrops", NAPI_AUTO_LENGTH, &resource_name));
  NAPI_CALL(env, napi_create_object(env, &self));
  NAPI_CALL(env, napi_async_init(env, self, resource_name, &st->async_ctx));
  NAPI_CALL(env, napi_wrap(env, self, st, finalize, NULL, &st->self));
  NAPI_CALL(env, napi_add_env_cleanup_hook(env, cleanup_hook, st));
  return self;
}

/* listen(handle, ref: boolean): start delivering batches; ref keeps the loop alive. */
static napi_value kd_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "listen(handle, ref) needs a handle");
    return NULL;
  }
  kd_state *st = unwrap(env, argv[0]);
  if (st == NULL) return NULL;
  if (st->closing) {
    napi_value e = make_error(env, EBADF, "listen", "kernel drops: listen on a closed handle");
    if (e) napi_throw(env, e);
    return NULL;
  }
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

/* drain(handle): consume what is queued now and deliver it (before a flush, at stop). */
static napi_value kd_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  kd_state *st = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (st == NULL || st->closing) return NULL;
  int n = ring_buffer__consume(st->rb);
  if (n < 0 && n != -ECANCELED) return throw_libbpf(env, -n, "ring_buffer__consume");
  if (!st->closing) deliver(st);
  return NULL;
}

/* close(handle): detaches the program; idempotent; no callback runs after it returns. */
static napi_value kd_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  kd_state *st = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (st == NULL) return NULL;
  close_state(st);
  return NULL;
}

/* stats(handle) → { events, batches, wakeups, lost } (lost: events the ring buffer had no room for). */
static napi_value kd_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  kd_state *st = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (st == NULL) return NULL;
  double lost = (st->skel && st->skel->bss) ? (double)__atomic_load_n(&st->skel->bss->lost, __ATOMIC_RELAXED) : 0;
  NAPI_CALL(env, napi_create_object(env, &out));
  const struct {
    const char *name;
    double value;
  } fields[] = {{"events", st->events}, {"batches", st->batches}, {"wakeups", st->wakeups}, {"lost", lost}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    NAPI_CALL(env, napi_create_double(env, fields[i].value, &v));
    NAPI_CALL(env, napi_set_named_property(env, out, fields[i].name, v));
  }
  return out;
}

/*
 * reasons() → { values: number[], names: string[], tracepoint: boolean }:
 * the running kernel's enum skb_drop_reason from its BTF, names without the
 * SKB_DROP_REASON_ prefix (numbers differ between kernels; names are what we
 * match), and whether the BTF has the kfree_skb tracepoint's type
 * (btf_trace_kfree_skb), which tp_btf programs attach by.
 * Throws with code ENOENT when the kernel has no BTF or no such enum.
 */
static napi_value kd_reasons(napi_env env, napi_callback_info info) {
  (void)info;
  struct btf *btf = btf__load_vmlinux_btf();
  if (btf == NULL) return throw_libbpf(env, errno ? errno : ENOENT, "load vmlinux BTF");
  __s32 id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
  if (id < 0) {
    btf__free(btf);
    napi_value e = make_error(env, ENOENT, "btf", "kernel drops: the kernel's BTF has no enum skb_drop_reason (kernel older than 5.17)");
    if (e) napi_throw(env, e);
    return NULL;
  }
  bool tracepoint = btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF) >= 0;
  const struct btf_type *t = btf__type_by_id(btf, id);
  const struct btf_enum *en = btf_enum(t);
  uint16_t n = btf_vlen(t);
  napi_value out, values, names, v;
  napi_status s = napi_create_object(env, &out);
  if (s == napi_ok) s = napi_create_array_with_length(env, n, &values);
  if (s == napi_ok) s = napi_create_array_with_length(env, n, &names);
  for (uint16_t i = 0; s == napi_ok && i < n; i++) {
    const char *name = btf__name_by_offset(btf, en[i].name_off);
    if (name == NULL) name = "";
    if (strncmp(name, "SKB_DROP_REASON_", 16) == 0) name += 16;
    s = napi_create_uint32(env, (uint32_t)en[i].val, &v);
    if (s == napi_ok) s = napi_set_element(env, values, i, v);
    if (s == napi_ok) s = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
    if (s == napi_ok) s = napi_set_element(env, names, i, v);
  }
  btf__free(btf);
  if (s != napi_ok) {
    throw_last_napi_error(env, "reasons()");
    return NULL;
  }
  NAPI_CALL(env, napi_set_named_property(env, out, "values", values));
  NAPI_CALL(env, napi_set_named_property(env, out, "names", names));
  NAPI_CALL(env, napi_get_boolean(env, tracepoint, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "tracepoint", v));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"open", NULL, kd_open, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, kd_listen, NULL, NULL, NULL, napi_default, NULL},
      {"drain", NULL, kd_drain, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, kd_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, kd_stats, NULL, NULL, NULL, napi_default, NULL},
      {"reasons", NULL, kd_reasons, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
