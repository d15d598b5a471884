/*
 * N-API helpers shared by the addons in native/src: every failed N-API call
 * throws a JavaScript exception (NAPI_CALL, as nodejs/node's
 * test/js-native-api/common.h does), errors carry the errno name as `code`,
 * and callbacks into JavaScript go through napi_make_callback so promise jobs
 * they queue run right after them. Main thread only.
 */
#ifndef FLOWTRAIL_NAPI_UTIL_H
#define FLOWTRAIL_NAPI_UTIL_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    napi_status status_ = (call);                                              \
    if (status_ != napi_ok) {                                                  \
      throw_last_napi_error((env), #call);                                     \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static inline void throw_last_napi_error(napi_env env, const char *call) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const char *msg = (info && info->error_message) ? info->error_message : "unknown N-API error";
    char buf[512];
    snprintf(buf, sizeof buf, "%s failed: %s", call, msg);
    napi_throw_error(env, "ERR_NAPI", buf);
  }
}

static inline const char *errno_name(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

/* Builds Error(message) with .code = errno name, .errno, .syscall. */
static inline napi_value make_error(napi_env env, int err, const char *syscall, const char *msg) {
  napi_value code, message, error, v;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_error(env, code, message, &error) != napi_ok) return NULL;
  napi_create_int32(env, err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  return error;
}

/* Calls a referenced JS function from a libuv callback; an exception it throws is fatal, as for any I/O callback. */
static inline void call_js(napi_env env, napi_async_context ctx, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_value fn, recv, result;
  if (fn_ref == NULL) return;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv); /* make_callback needs an object receiver */
  napi_status s = napi_make_callback(env, ctx, recv, fn, argc, argv, &result);
  if (s == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

/* Finalizer of external buffers whose memory came from malloc. */
static inline void free_external(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* options.name as a uint32 (def when absent or undefined); -1 with a TypeError thrown otherwise. */
static inline int get_uint32_prop(napi_env env, napi_value obj, const char *name, uint32_t def, uint32_t *out) {
  bool has = false;
  napi_value v;
  *out = def;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok) return -1;
  if (!has) return 0;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return -1;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_undefined) return 0;
  if (t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "open(): option %s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG", msg);
    return -1;
  }
  if (napi_get_value_uint32(env, v, out) != napi_ok) return -1;
  return 0;
}

/* listen(handle, ref)'s ref: true when absent or undefined; -1 with a TypeError thrown when not a boolean. */
static inline int get_ref_arg(napi_env env, size_t argc, napi_value *argv, bool *ref) {
  *ref = true;
  if (argc < 2) return 0;
  napi_valuetype t;
  if (napi_typeof(env, argv[1], &t) != napi_ok) {
    throw_last_napi_error(env, "napi_typeof(ref)");
    return -1;
  }
  if (t == napi_undefined) return 0;
  if (t != napi_boolean || napi_get_value_bool(env, argv[1], ref) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "listen(handle, ref): ref must be a boolean");
    return -1;
  }
  return 0;
}

#endif
