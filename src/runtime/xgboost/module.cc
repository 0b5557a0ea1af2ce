// The entry point of the XGBoost module (see runtime/runtime_module.h).
#include "runtime/runtime_module.h"
#include "runtime/xgboost/xgboost_runtime.h"

FERRY_RUNTIME_MODULE(ferry::runtime::CreateXgboostRuntime)
