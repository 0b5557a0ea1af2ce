/*
 * Plugins that the server must refuse, each built from this file with one define:
 *   BROKEN_VERSION          reports an ABI major version one past the server's
 *   BROKEN_MISSING_EXECUTE  does not export ferry_plugin_instance_execute
 *   BROKEN_INITIALIZE       fails ferry_plugin_initialize
 * Everything else is a working stub, so the defect under test is the only one.
 */
#include <ferry/plugin.h>

#include <stdlib.h>

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
static FerryPluginError unsupported = {FERRY_ERROR_UNIMPLEMENTED, "broken test plugin"};

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
