/*
 * Test plugins, each built from this file with one define:
 *   BROKEN_VERSION          reports an ABI major version one past the server's
 *   BROKEN_MISSING_EXECUTE  does not export ferry_plugin_instance_execute
 *   BROKEN_INITIALIZE       fails ferry_plugin_initialize
 *   AUTOCOMPLETE            exports ferry_plugin_model_autocomplete, which declares one
 *                           FP32 input IN and output OUT (dims [-1]) for any config or,
 *                           when the config has a parameter "broken", hands back JSON
 *                           that is not a model config
 * Everything else is a working stub (execute answers UNIMPLEMENTED), so the feature or
 * defect under test is the only one.
 */
#include <ferry/plugin.h>

#include <stdlib.h>
#include <string.h>

struct FerryPluginModel {
  int unused;
};
struct FerryPluginInstance {
  int unused;
};

void ferry_plugin_api_version(uint32_t* major, uint32_t* minor) {
#ifdef BROKEN_VERSION
  *major = FERRY_PLUGIN_API_VERSION_MAJOR + 1;
#else
  *major = FERRY_PLUGIN_API_VERSION_MAJOR;
#endif
  *minor = 0;
}

#ifdef BROKEN_INITIALIZE
static FerryPluginError no_device = {FERRY_ERROR_UNAVAILABLE, "the device this plugin needs is absent"};
FerryPluginError* ferry_plugin_initialize(void) { return &no_device; }
#endif

void ferry_plugin_error_release(FerryPluginError* error) { (void)error; }

#ifdef AUTOCOMPLETE
static FerryPluginError refused = {FERRY_ERROR_INVALID_ARGUMENT, "the server refused the completed config"};

FerryPluginError* ferry_plugin_model_autocomplete(const FerryModelArgs* args, const FerryConfigSink* sink) {
  const char* json = strstr(args->config_json, "\"broken\"")
                         ? "{\"input\": [{\"name\": \"IN\", \"no_such_field\": 1}]}"
                         : "{\"backend\": \"autocomplete\", \"max_batch_size\": 4,"
                           " \"input\": [{\"name\": \"IN\", \"data_type\": \"TYPE_FP32\", \"dims\": [-1]}],"
                           " \"output\": [{\"name\": \"OUT\", \"data_type\": \"TYPE_FP32\", \"dims\": [-1]}]}";
  return sink->set_config(sink->context, json, strlen(json)) == 0 ? NULL : &refused;
}
#endif

FerryPluginError* ferry_plugin_model_create(const FerryModelArgs* args, FerryPluginModel** model) {
  (void)args;
  *model = calloc(1, sizeof **model);
  return NULL;
}

void ferry_plugin_model_destroy(FerryPluginModel* model) { free(model); }

FerryPluginError* ferry_plugin_instance_create(FerryPluginModel* model, const FerryInstanceArgs* args,
                                               FerryPluginInstance** instance) {
  (void)model;
  (void)args;
  *instance = calloc(1, sizeof **instance);
  return NULL;
}

void ferry_plugin_instance_destroy(FerryPluginInstance* instance) { free(instance); }

#ifndef BROKEN_MISSING_EXECUTE
static FerryPluginError unsupported = {FERRY_ERROR_UNIMPLEMENTED, "a test plugin that does not execute"};

FerryPluginError* ferry_plugin_instance_execute(FerryPluginInstance* instance, const FerryTensor* inputs,
                                                uint32_t input_count, const char* const* output_names,
                                                uint32_t output_count, const FerryOutputAllocator* allocator) {
  (void)instance;
  (void)inputs;
  (void)input_count;
  (void)output_names;
  (void)output_count;
  (void)allocator;
  return &unsupported;
}
#endif
