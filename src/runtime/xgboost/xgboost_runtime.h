#pragma once

#include <memory>

#include "runtime/runtime.h"

namespace ferry::runtime {

// The XGBoost runtime (backend and platform "xgboost", files model.json, model.ubj or
// xgboost.model), on libxgboost's C API. One booster per model instance, loaded from
// the file's bytes (models written by XGBoost >= 3.0 get their vector base_score
// rewritten first, see xgb::UpgradeBaseScore). Predictions run in place on the
// request's buffer (XGBoosterPredictFromDense, no DMatrix copy); gblinear models,
// which XGBoost cannot predict in place, go through a DMatrix.
//
// The model takes one input, a [batch, num_features] FP32 or FP64 matrix, and gives
// one FP32 output; names default to input__0 / output__0. Config parameters:
// predict_proba, output_margin (see xgb::PlanOutput), nthread (default: the server's
// per-instance thread budget).
//
// Thread-safety: the Runtime's methods may run concurrently; each instance's
// Execute is called by one thread at a time (a booster's prediction buffer is not
// shared across concurrent calls). Terminate is a no-op: XGBoost cannot stop a
// prediction.
Result<std::unique_ptr<Runtime>> CreateXgboostRuntime();

}  // namespace ferry::runtime
