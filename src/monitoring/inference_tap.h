#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/infer_request.h"
#include "core/parameters.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/trace_context.h"

namespace ferry::monitoring {

// One answered request as the monitoring consumers (payload log, drift sketches, the
// feedback join) see it: a value that shares the request's and response's tensor bytes
// (Tensor copies are reference-counted), so handing it over copies no tensor data. The
// request path leaves out the tensors that no consumer asked for (TapDemand).
struct InferenceRecord {
  std::string model;
  std::string version;     // the version that answered (or was asked for, if none did)
  std::string request_id;  // the request's `id` as answered to the client; may be empty
  Frontend frontend = Frontend::kHttp;
  uint64_t received_wall_ms = 0;  // wall clock (ms since the epoch) when the server got it
  uint64_t duration_ns = 0;       // from receipt to answer
  StatusCode code = StatusCode::kOk;
  std::string error;  // the answer's error message when code is not kOk
  Parameters parameters;        // the request's parameters
  std::vector<Tensor> inputs;   // as the model saw them; empty when the body did not decode
  std::vector<Tensor> outputs;  // as answered; empty on failure
  std::optional<TraceContext> trace_parent;
};

// What monitoring needs of one version's requests, so that the request path builds (and
// copies into) a record only what some consumer reads.
struct TapDemand {
  bool wanted = false;   // any record at all (Offer is worth calling)
  bool inputs = false;   // the request's tensors
  bool outputs = false;  // the answer's tensors
  // The share of requests whose record is wanted, decided by request id (Sampled() in
  // request_sampling.h): 1 unless every consumer that wants records of the version
  // samples; then the largest of their rates (a lower rate's sample lies inside a higher
  // one's); 0 when no consumer wants records (only rows).
  double sample_rate = 1.0;
  // Some consumer takes the version's successful requests as feature rows: OfferRows
  // each one (with the inputs as the model saw them and the answer's outputs), whether or
  // not it also gets a record.
  bool rows = false;
  // With `rows`: the tap's handle on the version, to give back to OfferRows (it spares
  // OfferRows finding the version again). Opaque to the caller.
  std::shared_ptr<const void> rows_handle = nullptr;
};

// Where the request path hands answered requests to monitoring. The server calls Wants
// on every request of a loaded model and Offer once per answered request it wanted, on
// whichever thread answers it (IO or worker threads).
// Thread-safety: implementations must be thread-safe, and neither call may block or do
// IO: Offer queues the record (bounded) or drops it and counts the drop.
class InferenceTap {
 public:
  virtual ~InferenceTap() = default;
  // Whether requests of this model version are monitored at all; cheap.
  virtual bool Wants(std::string_view model, std::string_view version) const = 0;
  // What of them is needed (cheap). The default: everything of every wanted request. A
  // record built to it may leave out the tensors not asked for, and a request outside
  // the sample need not be offered at all.
  virtual TapDemand Demand(std::string_view model, std::string_view version) const {
    const bool w = Wants(model, version);
    return {w, w, w, 1.0};
  }
  // Takes one record; never blocks.
  virtual void Offer(InferenceRecord record) = 0;
  // An empty record to fill and hand to OfferRecord: the default a new one; a tap may
  // hand back a record it is done with (its strings, tensor vectors and shapes keep their
  // capacity; it holds no tensor bytes), so that filling it allocates nothing. Every
  // field is to be assigned (a reused record's tensor vectors are not empty). Never blocks.
  virtual std::unique_ptr<InferenceRecord> NewRecord() { return std::make_unique<InferenceRecord>(); }
  // Offer for a record from NewRecord, handed over by pointer (a record is a large value
  // to move); the default Offers its value.
  virtual void OfferRecord(std::unique_ptr<InferenceRecord> record) { Offer(std::move(*record)); }
  // A successful request of a version whose Demand says `rows`: its feature values are
  // copied into the calling thread's staging block (no record, no wake-up, no shared
  // lock). Never blocks.
  // `demand` is the one Demand gave for the request.
  virtual void OfferRows(const TapDemand& /*demand*/, const std::vector<Tensor>& /*inputs*/,
                         const std::vector<Tensor>& /*outputs*/) {}
};

}  // namespace ferry::monitoring
