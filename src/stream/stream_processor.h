#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "batch/row_decoder.h"
#include "core/result.h"
#include "server/server.h"
#include "stream/message_codec.h"
#include "stream/stream_metrics.h"

namespace ferry::stream {

enum class Guarantee {
  // Outputs, dead letters and the input offsets go in one Kafka transaction; readers
  // of the output on read_committed see each input's output exactly once.
  kExactlyOnce,
  // Offsets are stored only after the outputs are acknowledged; a crash may repeat
  // outputs, never lose them.
  kAtLeastOnce,
};

struct StreamOptions {
  std::string brokers;                    // bootstrap.servers
  std::vector<std::string> input_topics;
  std::string output_topic;
  std::string dead_letter_topic;
  std::string group = "ferry-stream";     // group.id
  Guarantee guarantee = Guarantee::kExactlyOnce;
  // Static group membership (group.instance.id) and a fixed transactional.id
  // (<group>.<instance_id>): a restarted instance takes its partitions back at once and
  // fences (aborts) its predecessor's open transaction. Empty: a dynamic member and a
  // transactional.id of its own, so a crashed instance's transaction blocks its
  // partitions until transaction_timeout_ms has passed.
  std::string instance_id;
  MessageFormat format = MessageFormat::kV2Json;
  ModelRef model;                           // from --model; a message's headers override it
  std::vector<batch::Column> columns;       // row formats; empty: one per model input (JSON only)
  std::vector<batch::ColumnMapping> map;    // row formats: COLUMN:INPUT
  int batch_size = 64;                      // most messages taken from the consumer at once
  int linger_ms = 5;                        // how long to wait for a batch to fill
  int commit_interval_ms = 100;             // exactly-once: how long a transaction stays open
  int transaction_timeout_ms = 60000;       // transaction.timeout.ms (message.timeout.ms is as long)
  int statistics_interval_ms = 5000;        // statistics.interval.ms (lag metric); 0: none
  std::string auto_offset_reset = "earliest";
  // Extra librdkafka properties for both clients (security.protocol, sasl.*, ...).
  std::vector<std::pair<std::string, std::string>> kafka_config;
};

// Consumes the input topics in a consumer group, runs each message (or each batch of row
// messages) through the in-process Server, and produces a V2 JSON response per message to
// the output topic, keyed like the input, with the source position in headers. A message
// that fails to decode or to infer goes to the dead-letter topic with the error in its
// headers; the stream never stops for one. See docs/streaming.md for the guarantees.
// Thread-safety: Run is called once, from one thread; the stop flag may be set from any.
class StreamProcessor {
 public:
  // Checks the options against the server's models (the --model's schema for row
  // formats: INVALID_ARGUMENT naming the column or input) and makes the Kafka clients;
  // nothing is read yet. `server` (started) and `metrics` must outlive the processor.
  static Result<std::unique_ptr<StreamProcessor>> Create(server::Server& server, StreamOptions options,
                                                         StreamMetrics& metrics);
  ~StreamProcessor();

  // Runs until `stop` is set, then finishes the batch in hand, commits the open
  // transaction (or stores the delivered offsets), leaves the group and returns OK.
  // Returns an error only for what retrying cannot mend (fenced by another instance with
  // the same transactional.id; a broker that refuses the transactional API).
  Status Run(const std::atomic<bool>& stop);

  class Impl;

 private:
  explicit StreamProcessor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::stream
