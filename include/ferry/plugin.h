/*
 * ferry plugin ABI: custom model runtimes in any compiled language.
 *
 * A plugin is a shared library named libferry_<name>.so that exports the functions
 * declared below with C linkage. A model whose config names `backend: "<name>"` (and
 * <name> is not a runtime built into the server) is served by that library. The
 * server finds the library, in this order, in
 *   1. the model's version folder          <repo>/<model>/<version>/libferry_<name>.so
 *   2. the model folder                    <repo>/<model>/libferry_<name>.so
 *   3. the plugins folder                  <--plugin-dir or FERRY_PLUGIN_DIR>/libferry_<name>.so
 * and loads it with dlopen(RTLD_NOW | RTLD_LOCAL), once per path for the life of the
 * server (a changed library needs a server restart).
 *
 * The header is pure C99 with no dependency beyond <stdint.h> and <stddef.h>, so C,
 * C++, Rust (bindgen or hand-written extern "C"), Go (cgo) and Zig can implement it.
 * A plugin never links against the server and never calls into it except through the
 * callbacks the server hands over in a call's arguments.
 *
 * VERSIONING
 *   FERRY_PLUGIN_API_VERSION_MAJOR changes when the ABI breaks (a function's signature
 *   or a struct's layout); MINOR grows when something is added (a new optional entry
 *   point, a field at the end of an args struct the server fills). At load the server
 *   calls ferry_plugin_api_version() and refuses the library unless
 *     plugin major == server major  and  plugin minor <= server minor.
 *   A refused library leaves its models UNAVAILABLE with the reason.
 *
 * ENTRY POINTS
 *   required: ferry_plugin_api_version, ferry_plugin_error_release,
 *             ferry_plugin_model_create, ferry_plugin_model_destroy,
 *             ferry_plugin_instance_create, ferry_plugin_instance_destroy,
 *             ferry_plugin_instance_execute
 *   optional: ferry_plugin_initialize, ferry_plugin_finalize,
 *             ferry_plugin_model_autocomplete, ferry_plugin_instance_terminate
 *   A library missing a required symbol is refused, naming the symbol.
 *
 * OWNERSHIP, in one rule: whoever allocates frees. Memory the server passes in (args,
 * tensors, names, the config JSON) is borrowed by the plugin for the duration of the
 * call only. Memory the plugin returns (handles, errors) stays the plugin's; the server
 * hands it back through the matching destroy/release function. Output tensors are
 * written into buffers the server allocates through FerryOutputAllocator, so no output
 * memory crosses back.
 *
 * THREADING
 *   - ferry_plugin_api_version, ferry_plugin_initialize: once, right after dlopen,
 *     before any other call, on a model-loading thread.
 *   - ferry_plugin_finalize: once, after every model and instance of the library has
 *     been destroyed, right before dlclose (at server shutdown).
 *   - model autocomplete/create/destroy and instance create/destroy run on
 *     model-loading threads; calls for DIFFERENT models may run concurrently, so any
 *     state a plugin shares across models must be thread-safe.
 *   - ferry_plugin_instance_execute: one call at a time per instance (each instance is
 *     owned by one worker thread), different instances of the same model concurrently.
 *     Shared model state read during execute must therefore be safe for concurrent
 *     reads.
 *   - ferry_plugin_instance_terminate: from another thread, only while an execute on
 *     the same instance is running.
 *   - ferry_plugin_error_release: on any thread, once per error returned.
 */
#ifndef FERRY_PLUGIN_H_
#define FERRY_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_PLUGIN_API_VERSION_MAJOR 1
#define FERRY_PLUGIN_API_VERSION_MINOR 0

#if defined(__GNUC__)
#define FERRY_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define FERRY_PLUGIN_EXPORT
#endif

/* ------------------------------------------------------------------ handles */

/* A loaded model version: whatever the plugin reads once and shares among instances
 * (weights, parsed parameters). Defined by the plugin; opaque to the server. */
typedef struct FerryPluginModel FerryPluginModel;

/* One execution instance of a model (scratch buffers, a session, a thread pool).
 * Defined by the plugin; opaque to the server. */
typedef struct FerryPluginInstance FerryPluginInstance;

/* ------------------------------------------------------------------ errors */

typedef enum FerryErrorCode {
  FERRY_ERROR_INVALID_ARGUMENT = 1, /* the request's fault: HTTP 400, gRPC INVALID_ARGUMENT */
  FERRY_ERROR_INTERNAL = 2,         /* the plugin's or model's fault: HTTP 500, gRPC INTERNAL */
  FERRY_ERROR_UNAVAILABLE = 3,      /* cannot serve now (at load: the model becomes UNAVAILABLE) */
  FERRY_ERROR_UNIMPLEMENTED = 4,    /* the plugin does not support what was asked */
  FERRY_ERROR_CANCELLED = 5         /* execute stopped by ferry_plugin_instance_terminate */
} FerryErrorCode;

/* What a failing call returns. Every function that can fail returns a
 * `FerryPluginError*`: NULL means success. The error (struct and message) is owned by
 * the plugin; the server copies the code and message and then passes the pointer to
 * ferry_plugin_error_release exactly once. A plugin may return a static error and make
 * its release a no-op for it. */
typedef struct FerryPluginError {
  FerryErrorCode code;
  const char* message; /* NUL-terminated UTF-8; may be NULL (the server then says "no message") */
} FerryPluginError;

/* ------------------------------------------------------------------ tensors */

/* Element types; the values are those of Triton's model-config DataType. */
typedef enum FerryDataType {
  FERRY_TYPE_INVALID = 0,
  FERRY_TYPE_BOOL = 1, /* one byte per element, 0 or 1 */
  FERRY_TYPE_UINT8 = 2,
  FERRY_TYPE_UINT16 = 3,
  FERRY_TYPE_UINT32 = 4,
  FERRY_TYPE_UINT64 = 5,
  FERRY_TYPE_INT8 = 6,
  FERRY_TYPE_INT16 = 7,
  FERRY_TYPE_INT32 = 8,
  FERRY_TYPE_INT64 = 9,
  FERRY_TYPE_FP16 = 10, /* IEEE 754 binary16 */
  FERRY_TYPE_FP32 = 11,
  FERRY_TYPE_FP64 = 12,
  FERRY_TYPE_BYTES = 13, /* per element: uint32 little-endian length, then the bytes */
  FERRY_TYPE_BF16 = 14   /* bfloat16: the high 16 bits of an FP32 */
} FerryDataType;

/* A tensor the server lends to the plugin for one call. Bytes are little-endian,
 * row-major, unpadded. `data` may be unaligned for its type (a binary HTTP tensor can
 * start at any offset): use memcpy, or copy, when alignment matters. */
typedef struct FerryTensor {
  const char* name;        /* NUL-terminated */
  FerryDataType datatype;
  const int64_t* shape;    /* `rank` dimensions, each >= 0 */
  uint32_t rank;
  const void* data;        /* `byte_size` bytes; may be NULL when byte_size is 0 */
  uint64_t byte_size;
} FerryTensor;

/* How the plugin gets memory for its outputs: the server allocates, the plugin
 * writes. Valid only during the execute call it was passed to.
 *
 * allocate(context, index, datatype, shape, rank, byte_size):
 *   returns a buffer of `byte_size` bytes (aligned to 16) for output `index` (a
 *   position in the execute call's output_names), owned by the server; the plugin
 *   fills it before execute returns. For fixed-size types byte_size must equal the
 *   element count times the element size. Returns NULL when the request is wrong (an
 *   index out of range or already allocated, a datatype or size that does not fit, or
 *   no memory); the server remembers why and reports that reason, so the plugin should
 *   then just return any error. Call it from the thread running execute. */
typedef struct FerryOutputAllocator {
  void* context; /* the server's; pass it back unchanged */
  void* (*allocate)(void* context, uint32_t index, FerryDataType datatype, const int64_t* shape, uint32_t rank,
                    uint64_t byte_size);
} FerryOutputAllocator;

/* Hands a JSON model config back to the server (autocomplete). The server copies
 * `json` (`size` bytes, need not be NUL-terminated); returns 0 on success, non-zero
 * when the JSON does not parse as a model config (the server then fails the load with
 * the parser's message). Valid only during the call it was passed to. */
typedef struct FerryConfigSink {
  void* context;
  int (*set_config)(void* context, const char* json, uint64_t size);
} FerryConfigSink;

/* ------------------------------------------------------------------ call arguments */

/* What the server tells a plugin about a model version. All pointers are borrowed for
 * the call. Fields may be added at the end in a later minor version; a plugin built
 * against an older minor never reads past the fields it knows. */
typedef struct FerryModelArgs {
  const char* name;        /* model name */
  const char* path;        /* the version folder (or the configured model file, when
                              the config sets default_model_filename) */
  const char* config_json; /* the model config as JSON, Triton's GET .../config form:
                              inputs, outputs, max_batch_size, parameters, ... */
} FerryModelArgs;

/* Per-instance settings. Borrowed for the call. */
typedef struct FerryInstanceArgs {
  uint32_t index;           /* 0 .. instance count - 1 */
  int32_t intra_op_threads; /* threads this instance may use (the server's budget) */
} FerryInstanceArgs;

/* ------------------------------------------------------------------ entry points */

/* REQUIRED. Reports the ABI version the plugin was compiled against: write
 * FERRY_PLUGIN_API_VERSION_MAJOR and _MINOR. Called once, first, after dlopen. Must not
 * fail or allocate. */
FERRY_PLUGIN_EXPORT void ferry_plugin_api_version(uint32_t* major, uint32_t* minor);

/* OPTIONAL. Library-wide setup, once, after the version check and before any model
 * call. An error refuses the library (its models become UNAVAILABLE with the message). */
FERRY_PLUGIN_EXPORT FerryPluginError* ferry_plugin_initialize(void);

/* OPTIONAL. Library-wide teardown, once, after every model and instance is destroyed,
 * before dlclose. */
FERRY_PLUGIN_EXPORT void ferry_plugin_finalize(void);

/* REQUIRED. Releases an error this plugin returned. Called exactly once per error, on
 * any thread. */
FERRY_PLUGIN_EXPORT void ferry_plugin_error_release(FerryPluginError* error);

/* OPTIONAL. Completes or checks a model config before the model is created: inputs,
 * outputs and max_batch_size the plugin knows from its files. Call sink->set_config
 * with the full completed config as JSON, or not at all to keep the config as it is.
 * An error fails the load (the model becomes UNAVAILABLE with the message); name the
 * tensor or field at fault. Runs on a model-loading thread; no model handle exists yet. */
FERRY_PLUGIN_EXPORT FerryPluginError* ferry_plugin_model_autocomplete(const FerryModelArgs* args,
                                                                      const FerryConfigSink* sink);

/* REQUIRED. Creates the model: reads files under args->path and the config. On success
 * writes a plugin-owned handle to *model, which the server later passes to
 * ferry_plugin_model_destroy exactly once, after every instance created from it has
 * been destroyed. On error *model is ignored and the model becomes UNAVAILABLE with the
 * message. The config is auto-completed and validated when this runs: every input and
 * output has a name, a datatype and dims. */
FERRY_PLUGIN_EXPORT FerryPluginError* ferry_plugin_model_create(const FerryModelArgs* args, FerryPluginModel** model);

/* REQUIRED. Destroys a model created by ferry_plugin_model_create. */
FERRY_PLUGIN_EXPORT void ferry_plugin_model_destroy(FerryPluginModel* model);

/* REQUIRED. Creates one execution instance of `model` (borrowed: it outlives the
 * instance). On success writes a plugin-owned handle to *instance, later passed to
 * ferry_plugin_instance_destroy exactly once. */
FERRY_PLUGIN_EXPORT FerryPluginError* ferry_plugin_instance_create(FerryPluginModel* model,
                                                                   const FerryInstanceArgs* args,
                                                                   FerryPluginInstance** instance);

/* REQUIRED. Destroys an instance; no execute on it is running or will run. */
FERRY_PLUGIN_EXPORT void ferry_plugin_instance_destroy(FerryPluginInstance* instance);

/* REQUIRED. Runs the model once.
 *   inputs:       `input_count` tensors, every input of the model, in the config's
 *                 order, already checked against the config (names, datatypes, shapes
 *                 with the batch dimension first when max_batch_size > 0). Borrowed.
 *   output_names: `output_count` NUL-terminated names, the outputs the server wants,
 *                 each one of the config's outputs. Borrowed.
 *   allocator:    where each output goes: allocate output i (for output_names[i]) once,
 *                 fill it, return. Every requested output must be allocated on success.
 * Returns NULL on success. An error fails this request only (its message reaches the
 * client; INVALID_ARGUMENT is the client's fault, anything else the server's); the
 * instance stays in service. */
FERRY_PLUGIN_EXPORT FerryPluginError* ferry_plugin_instance_execute(FerryPluginInstance* instance,
                                                                    const FerryTensor* inputs, uint32_t input_count,
                                                                    const char* const* output_names,
                                                                    uint32_t output_count,
                                                                    const FerryOutputAllocator* allocator);

/* OPTIONAL. Asks the execute running on `instance` to stop early (a deadline passed or
 * the client left); that execute should then return FERRY_ERROR_CANCELLED soon. Called
 * from another thread, only while an execute on this instance runs; must not block.
 * Without it, an execute always runs to the end. */
FERRY_PLUGIN_EXPORT void ferry_plugin_instance_terminate(FerryPluginInstance* instance);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FERRY_PLUGIN_H_ */
