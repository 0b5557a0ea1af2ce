/*
 * libferry_add_one.so: an example ferry plugin (include/ferry/plugin.h) in plain C.
 *
 * Every output OUTPUT<suffix> is the input INPUT<suffix> plus one, element by element,
 * in the input's own datatype: any numeric type (UINT8..UINT64, INT8..INT64, FP16,
 * BF16, FP32, FP64), any shape. Integer inputs whose value is the type's maximum are
 * refused with an INVALID_ARGUMENT error naming the tensor and the element, so the
 * example also shows how a plugin reports a bad request.
 *
 * Build: cc -shared -fPIC -I<ferry>/include add_one.c -o libferry_add_one.so
 * Serve: a model whose config says backend: "add_one" (see model/config.pbtxt), with
 *        the library in its version folder, its model folder or ferry's --plugin-dir.
 */
#include <ferry/plugin.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct FerryPluginModel {
  char* name;
};

struct FerryPluginInstance {
  struct FerryPluginModel* model; /* borrowed: the model outlives its instances */
  atomic_int stop;                /* set by ferry_plugin_instance_terminate */
};

/* ---------------------------------------------------------------- errors */

/* Errors are malloc'ed, message included, and freed by ferry_plugin_error_release;
 * only the out-of-memory error is static. */
static FerryPluginError out_of_memory = {FERRY_ERROR_INTERNAL, "add_one: out of memory"};

static FerryPluginError* make_error(FerryErrorCode code, const char* format, ...) {
  va_list args;
  va_start(args, format);
  char buffer[512];
  vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  size_t len = strlen(buffer);
  FerryPluginError* error = malloc(sizeof *error + len + 1);
  if (error == NULL) return &out_of_memory;
  char* message = (char*)(error + 1);
  memcpy(message, buffer, len + 1);
  error->code = code;
  error->message = message;
  return error;
}

void ferry_plugin_error_release(FerryPluginError* error) {
  if (error != &out_of_memory) free(error);
}

/* ---------------------------------------------------------------- half floats */

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13); /* inf, nan */
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else { /* subnormal: normalise */
    exp = 113;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Round to nearest, ties to even, as numpy does. */
static uint16_t float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0); /* inf, nan */
  if (abs >= 0x477ff000u) return sign | 0x7c00;                                    /* overflows to inf */
  if (abs < 0x38800000u) {                                                         /* subnormal or zero */
    if (abs < 0x33000000u) return sign;
    uint32_t exp = abs >> 23, mant = (abs & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - exp; /* 14..24 */
    uint32_t half = mant >> shift, rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) ++half;
    return sign | (uint16_t)half;
  }
  uint32_t half = ((abs >> 13) - (112u << 10)), rest = abs & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;
  return sign | (uint16_t)half;
}

static float bf16_to_float(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* nan stays nan */
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

/* ---------------------------------------------------------------- add one */

/* Integer types: refuse the maximum, whose successor does not exist. Reads and writes
 * go through memcpy because request buffers may be unaligned. */
#define ADD_ONE_INT(type, max)                                                                          \
  for (uint64_t i = 0; i < count; ++i) {                                                                \
    type v;                                                                                             \
    memcpy(&v, in + i * sizeof(type), sizeof(type));                                                    \
    if (v == (max))                                                                                     \
      return make_error(FERRY_ERROR_INVALID_ARGUMENT, "input '%s': element %llu is %s, the largest %s; " \
                        "adding one would overflow", name, (unsigned long long)i, #max, dtype_name);    \
    v = (type)(v + 1);                                                                                  \
    memcpy(out + i * sizeof(type), &v, sizeof(type));                                                   \
  }                                                                                                     \
  return NULL;

#define ADD_ONE_FLOAT(type)                              \
  for (uint64_t i = 0; i < count; ++i) {                 \
    type v;                                              \
    memcpy(&v, in + i * sizeof(type), sizeof(type));     \
    v = v + (type)1;                                     \
    memcpy(out + i * sizeof(type), &v, sizeof(type));    \
  }                                                      \
  return NULL;

#define ADD_ONE_16(to_float, from_float)                               \
  for (uint64_t i = 0; i < count; ++i) {                               \
    uint16_t v;                                                        \
    memcpy(&v, in + i * 2, 2);                                         \
    v = from_float(to_float(v) + 1.0f);                                \
    memcpy(out + i * 2, &v, 2);                                        \
  }                                                                    \
  return NULL;

static size_t element_size(FerryDataType t) {
  switch (t) {
    case FERRY_TYPE_UINT8: case FERRY_TYPE_INT8: return 1;
    case FERRY_TYPE_UINT16: case FERRY_TYPE_INT16: case FERRY_TYPE_FP16: case FERRY_TYPE_BF16: return 2;
    case FERRY_TYPE_UINT32: case FERRY_TYPE_INT32: case FERRY_TYPE_FP32: return 4;
    case FERRY_TYPE_UINT64: case FERRY_TYPE_INT64: case FERRY_TYPE_FP64: return 8;
    default: return 0; /* BOOL, BYTES: not numbers */
  }
}

static FerryPluginError* add_one(const char* name, FerryDataType t, const unsigned char* in, unsigned char* out,
                                 uint64_t count) {
  static const char* const names[] = {"INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                      "INT32",   "INT64", "FP16", "FP32",   "FP64",   "BYTES",  "BF16"};
  const char* dtype_name = (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
  switch (t) {
    case FERRY_TYPE_UINT8: ADD_ONE_INT(uint8_t, UINT8_MAX)
    case FERRY_TYPE_UINT16: ADD_ONE_INT(uint16_t, UINT16_MAX)
    case FERRY_TYPE_UINT32: ADD_ONE_INT(uint32_t, UINT32_MAX)
    case FERRY_TYPE_UINT64: ADD_ONE_INT(uint64_t, UINT64_MAX)
    case FERRY_TYPE_INT8: ADD_ONE_INT(int8_t, INT8_MAX)
    case FERRY_TYPE_INT16: ADD_ONE_INT(int16_t, INT16_MAX)
    case FERRY_TYPE_INT32: ADD_ONE_INT(int32_t, INT32_MAX)
    case FERRY_TYPE_INT64: ADD_ONE_INT(int64_t, INT64_MAX)
    case FERRY_TYPE_FP16: ADD_ONE_16(half_to_float, float_to_half)
    case FERRY_TYPE_BF16: ADD_ONE_16(bf16_to_float, float_to_bf16)
    case FERRY_TYPE_FP32: ADD_ONE_FLOAT(float)
    case FERRY_TYPE_FP64: ADD_ONE_FLOAT(double)
    default:
      return make_error(FERRY_ERROR_INVALID_ARGUMENT, "input '%s': datatype %s is not a number", name, dtype_name);
  }
}

/* ---------------------------------------------------------------- entry points */

void ferry_plugin_api_version(uint32_t* major, uint32_t* minor) {
  *major = FERRY_PLUGIN_API_VERSION_MAJOR;
  *minor = FERRY_PLUGIN_API_VERSION_MINOR;
}

FerryPluginError* ferry_plugin_model_create(const FerryModelArgs* args, FerryPluginModel** model) {
  /* A real plugin would read its weights from args->path and its settings from
   * args->config_json here. */
  FerryPluginModel* m = calloc(1, sizeof *m);
  if (m == NULL || (m->name = strdup(args->name)) == NULL) {
    free(m);
    return make_error(FERRY_ERROR_INTERNAL, "add_one: out of memory creating model '%s'", args->name);
  }
  *model = m;
  return NULL;
}

void ferry_plugin_model_destroy(FerryPluginModel* model) {
  free(model->name);
  free(model);
}

FerryPluginError* ferry_plugin_instance_create(FerryPluginModel* model, const FerryInstanceArgs* args,
                                               FerryPluginInstance** instance) {
  (void)args;
  FerryPluginInstance* i = calloc(1, sizeof *i);
  if (i == NULL) return make_error(FERRY_ERROR_INTERNAL, "add_one: out of memory creating an instance");
  i->model = model;
  atomic_init(&i->stop, 0);
  *instance = i;
  return NULL;
}

void ferry_plugin_instance_destroy(FerryPluginInstance* instance) { free(instance); }

void ferry_plugin_instance_terminate(FerryPluginInstance* instance) { atomic_store(&instance->stop, 1); }

FerryPluginError* ferry_plugin_instance_execute(FerryPluginInstance* instance, const FerryTensor* inputs,
                                                uint32_t input_count, const char* const* output_names,
                                                uint32_t output_count, const FerryOutputAllocator* allocator) {
  atomic_store(&instance->stop, 0);
  for (uint32_t o = 0; o < output_count; ++o) {
    if (atomic_load(&instance->stop))
      return make_error(FERRY_ERROR_CANCELLED, "model '%s': stopped", instance->model->name);
    const char* out_name = output_names[o];
    if (strncmp(out_name, "OUTPUT", 6) != 0)
      return make_error(FERRY_ERROR_INTERNAL, "model '%s': output '%s' does not start with OUTPUT",
                        instance->model->name, out_name);
    const FerryTensor* in = NULL;
    for (uint32_t i = 0; i < input_count && in == NULL; ++i)
      if (strncmp(inputs[i].name, "INPUT", 5) == 0 && strcmp(inputs[i].name + 5, out_name + 6) == 0) in = &inputs[i];
    if (in == NULL)
      return make_error(FERRY_ERROR_INTERNAL, "model '%s': output '%s' has no input INPUT%s", instance->model->name,
                        out_name, out_name + 6);
    if (element_size(in->datatype) == 0) return add_one(in->name, in->datatype, NULL, NULL, 0);
    void* out = allocator->allocate(allocator->context, o, in->datatype, in->shape, in->rank, in->byte_size);
    if (out == NULL) return make_error(FERRY_ERROR_INTERNAL, "model '%s': no buffer for output '%s'",
                                       instance->model->name, out_name);
    FerryPluginError* error = add_one(in->name, in->datatype, (const unsigned char*)in->data, (unsigned char*)out,
                                      in->byte_size / element_size(in->datatype));
    if (error != NULL) return error;
  }
  return NULL;
}
