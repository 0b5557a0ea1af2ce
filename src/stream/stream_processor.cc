#include "stream/stream_processor.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/log.h"

namespace ferry::stream {

namespace {

using Clock = std::chrono::steady_clock;
using TopicPartition = std::pair<std::string, int32_t>;

// How long one blocking transactional call may take before it is retried.
constexpr int kTxnCallTimeoutMs = 10000;
constexpr auto kRetryPause = std::chrono::milliseconds(500);

struct InMsg {
  SourcePosition src;
  std::string key;
  bool has_key = false;
  std::string value;
  Headers headers;
  int64_t timestamp_ms = -1;
};

struct OutMsg {
  bool dead = false;  // to the dead-letter topic
  std::string value;
  Headers headers;
};

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using KafkaError = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
using TopicHandle = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

// How long the start-up waits for the output topics' metadata.
constexpr int kTopicMetadataTimeoutMs = 2000;

PartitionList ToList(const std::map<TopicPartition, int64_t>& offsets) {
  PartitionList l(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, off] : offsets) rd_kafka_topic_partition_list_add(l.get(), tp.first.c_str(), tp.second)->offset = off;
  return l;
}

std::string RandomSuffix() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()));
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 12; ++i) s += kHex[gen() % 16];
  return s;
}

// Waits for a set of Server::Infer calls.
class Latch {
 public:
  void Add() {
    std::lock_guard<std::mutex> l(mu_);
    ++n_;
  }
  void Done() {
    std::lock_guard<std::mutex> l(mu_);
    if (--n_ == 0) cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return n_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

// The plan for one model's row messages.
struct RowPlan {
  std::unique_ptr<RowMessageDecoder> decoder;  // null when `error` is set
  Status error;
  int64_t max_batch = 0;
};

}  // namespace

class StreamProcessor::Impl {
 public:
  Impl(server::Server& server, StreamOptions options, StreamMetrics& metrics)
      : server_(server), o_(std::move(options)), metrics_(metrics) {}

  ~Impl() {
    consumer_.reset();
    output_topics_.clear();  // before the producer they belong to
    producer_.reset();
  }

  Status Init();
  Status Run(const std::atomic<bool>& stop);

  // librdkafka callbacks (on this thread: they run inside poll/flush calls).
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void OnStats(std::string_view json);
  void OnDelivery(const rd_kafka_message_t* m);

 private:
  bool exactly_once() const { return o_.guarantee == Guarantee::kExactlyOnce; }
  Status SetAll(rd_kafka_conf_t* conf, const std::vector<std::pair<std::string, std::string>>& kv, const char* who);
  Status MakeConsumer();
  Status MakeProducer();
  // init_transactions, retried while the broker is away.
  Status InitTransactions();
  // Looks the output and dead-letter topics up before the first message, so the first
  // answers do not wait for the producer to discover them; warns about a missing one.
  void LearnOutputTopics();
  Result<RowPlan*> PlanFor(const ModelRef& ref);

  void CollectBatch();
  void Process(std::vector<InMsg>& batch, std::vector<OutMsg>* out);
  void ProcessV2(std::vector<InMsg>& batch, std::vector<OutMsg>* out);
  void ProcessRows(std::vector<InMsg>& batch, std::vector<OutMsg>* out);
  void DeadLetter(const InMsg& in, const Status& error, const char* stage, OutMsg* out);
  std::vector<Result<InferResponse>> InferAll(std::vector<InferRequest> requests);

  // Produces `out` (one per batch message); false when the producer failed fatally.
  void Produce(const std::vector<InMsg>& batch, std::vector<OutMsg>& out);
  // Exactly-once: commits the open transaction with the offsets after its messages. On
  // an abortable error it aborts and rewinds the consumer to the transaction's first
  // messages, so they are processed again.
  Status CommitTransaction();
  Status AbortTransaction();
  // At-least-once: waits for the batch's deliveries, then stores the offsets after them
  // (auto-commit sends them); on a failed delivery rewinds instead.
  void FinishAtLeastOnce();
  void CountDelivered();
  void ClearPending();
  void Rewind(const std::map<TopicPartition, int64_t>& first_offsets);
  bool Retriable(rd_kafka_error_t* e, const char* what);
  Status Fatal(rd_kafka_error_t* e, const char* what);

  server::Server& server_;
  StreamOptions o_;
  StreamMetrics& metrics_;
  std::string transactional_id_;
  KafkaHandle consumer_;
  KafkaHandle producer_;
  std::vector<TopicHandle> output_topics_;  // held so the producer keeps their metadata
  std::map<ModelRef, RowPlan> plans_;

  const std::atomic<bool>* stop_ = nullptr;
  std::vector<InMsg> batch_;  // taken from the consumer, not processed yet
  bool txn_open_ = false;
  Clock::time_point txn_began_;
  std::map<TopicPartition, int64_t> txn_next_;   // offset after the last processed message
  std::map<TopicPartition, int64_t> txn_first_;  // first message of the open transaction / unstored run
  std::vector<int64_t> txn_timestamps_;          // input timestamps of the open transaction's messages
  std::map<std::string, double> txn_out_;  // counted when the transaction commits
  std::map<std::pair<std::string, std::string>, double> txn_dead_;
  int64_t deliveries_failed_ = 0;
  Status fatal_;  // set by a callback that met an error retrying cannot mend
};

// ----------------------------------------------------------------- callbacks

namespace {
void RebalanceCb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<StreamProcessor::Impl*>(opaque)->OnRebalance(err, parts);
}
int StatsCb(rd_kafka_t*, char* json, size_t len, void* opaque) {
  static_cast<StreamProcessor::Impl*>(opaque)->OnStats(std::string_view(json, len));
  return 0;  // librdkafka frees the JSON
}
void DeliveryCb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  static_cast<StreamProcessor::Impl*>(opaque)->OnDelivery(m);
}
void ErrorCb(rd_kafka_t* rk, int err, const char* reason, void*) {
  // Connection losses are retried by librdkafka itself; they are logged, not acted on.
  FERRY_LOG(kWarning, "kafka client error",
            ("client", rd_kafka_name(rk))("error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)))(
                "reason", reason));
}
}  // namespace

void StreamProcessor::Impl::OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    std::string names;
    for (int i = 0; i < parts->cnt; ++i)
      names += (i ? "," : "") + std::string(parts->elems[i].topic) + "/" + std::to_string(parts->elems[i].partition);
    FERRY_LOG(kInfo, "partitions assigned", ("partitions", names));
    rd_kafka_assign(consumer_.get(), parts);
    return;
  }
  // Revoked: what was taken but not processed goes back (the next owner reads it again);
  // what was processed is committed before the partitions go, so the next owner starts
  // right after it and nothing is repeated.
  std::set<TopicPartition> revoked;
  for (int i = 0; i < parts->cnt; ++i) revoked.insert({parts->elems[i].topic, parts->elems[i].partition});
  std::vector<InMsg> keep;
  for (auto& m : batch_)
    if (!revoked.count({m.src.topic, m.src.partition})) keep.push_back(std::move(m));
  batch_ = std::move(keep);
  if (exactly_once()) {
    if (txn_open_) {
      Status s = CommitTransaction();
      if (!s.ok() && fatal_.ok()) fatal_ = s;
    }
  } else {
    FinishAtLeastOnce();
    rd_kafka_commit(consumer_.get(), nullptr, 0);
  }
  FERRY_LOG(kInfo, "partitions revoked", ("count", parts->cnt));
  rd_kafka_assign(consumer_.get(), nullptr);
  metrics_.SetConsumerLag({});
}

void StreamProcessor::Impl::OnStats(std::string_view json) {
  auto lags = ParseConsumerLag(json);
  if (lags.ok()) metrics_.SetConsumerLag(*lags);
}

void StreamProcessor::Impl::OnDelivery(const rd_kafka_message_t* m) {
  if (m->err) {
    ++deliveries_failed_;
    FERRY_LOG(kWarning, "kafka delivery failed", ("error", rd_kafka_err2str(m->err)));
  }
}

// ----------------------------------------------------------------- set-up

Status StreamProcessor::Impl::SetAll(rd_kafka_conf_t* conf, const std::vector<std::pair<std::string, std::string>>& kv,
                                     const char* who) {
  char errstr[512];
  for (const auto& [k, v] : kv)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      return InvalidArgument(std::string(who) + " property " + k + "=" + v + ": " + errstr);
  return Status::Ok();
}

Status StreamProcessor::Impl::MakeConsumer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"bootstrap.servers", o_.brokers},
      {"group.id", o_.group},
      {"client.id", "ferry-stream"},
      {"auto.offset.reset", o_.auto_offset_reset},
      // Inputs written by transactional producers (another ferry stream, say): only
      // committed ones are read.
      {"isolation.level", "read_committed"},
      // Offsets move only when ferry says so: in the transaction (exactly-once), or once
      // the outputs are delivered (at-least-once, then auto-commit sends stored ones).
      {"enable.auto.commit", exactly_once() ? "false" : "true"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      // A fetch waits at the broker until data comes for one of *its* partitions or this
      // long. Right after an assignment librdkafka 2.0.2 sends a fetch for the first
      // partition ready before the others are, so their messages waited up to the default
      // 500 ms; 100 ms bounds that stall at ten empty fetches a second when idle.
      {"fetch.wait.max.ms", "100"},
      {"statistics.interval.ms", std::to_string(o_.statistics_interval_ms)},
  };
  if (!o_.instance_id.empty()) kv.push_back({"group.instance.id", o_.instance_id});
  kv.insert(kv.end(), o_.kafka_config.begin(), o_.kafka_config.end());
  if (Status s = SetAll(conf, kv, "--kafka consumer"); !s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_rebalance_cb(conf, RebalanceCb);
  if (o_.statistics_interval_ms > 0) rd_kafka_conf_set_stats_cb(conf, StatsCb);
  rd_kafka_conf_set_error_cb(conf, ErrorCb);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgument(std::string("kafka consumer: ") + errstr);
  }
  consumer_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  return Status::Ok();
}

Status StreamProcessor::Impl::MakeProducer() {
  output_topics_.clear();  // they belong to the old producer
  producer_.reset();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"bootstrap.servers", o_.brokers},
      {"client.id", "ferry-stream"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      // Outputs leave in small batches soon after their inference: a transaction is
      // committed every commit interval anyway, so waiting longer buys little.
      {"linger.ms", "5"},
  };
  if (exactly_once()) {
    kv.push_back({"transactional.id", transactional_id_});
    kv.push_back({"transaction.timeout.ms", std::to_string(o_.transaction_timeout_ms)});
    // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
    kv.push_back({"message.timeout.ms", std::to_string(o_.transaction_timeout_ms)});
  } else {
    // Never give up on an output while the broker is away: its input's offset is not
    // stored until it is delivered.
    kv.push_back({"message.timeout.ms", "0"});
  }
  kv.insert(kv.end(), o_.kafka_config.begin(), o_.kafka_config.end());
  if (Status s = SetAll(conf, kv, "--kafka producer"); !s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, DeliveryCb);
  rd_kafka_conf_set_error_cb(conf, ErrorCb);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgument(std::string("kafka producer: ") + errstr);
  }
  producer_.reset(rk);
  return Status::Ok();
}

Status StreamProcessor::Impl::Init() {
  if (o_.format != MessageFormat::kV2Json && !o_.model.model.empty()) {
    // The command line's model is checked now, so a schema that does not fit it is
    // refused before the first message.
    FERRY_ASSIGN_OR_RETURN(RowPlan * plan, PlanFor(o_.model));
    if (!plan->error.ok()) return plan->error;
    FERRY_LOG(kInfo, "row plan", ("model", o_.model.model)("plan", plan->decoder->Describe()));
  }
  transactional_id_ = o_.group + "." + (o_.instance_id.empty() ? "ferry-" + RandomSuffix() : o_.instance_id);
  FERRY_RETURN_IF_ERROR(MakeConsumer());
  return MakeProducer();
}

Result<RowPlan*> StreamProcessor::Impl::PlanFor(const ModelRef& ref) {
  auto it = plans_.find(ref);
  if (it != plans_.end()) return &it->second;
  RowPlan plan;
  auto config = server_.GetModelConfig(ref.model, ref.version);
  if (!config.ok()) {
    plan.error = config.status();
  } else {
    plan.max_batch = config->max_batch_size();
    std::vector<batch::ModelInput> inputs;
    for (const auto& in : config->input())
      inputs.push_back({in.name(), static_cast<DataType>(in.data_type()), Shape(in.dims().begin(), in.dims().end()), 1});
    std::vector<batch::Column> columns = o_.columns;
    if (columns.empty()) {
      if (o_.format == MessageFormat::kCsvRow) {
        plan.error = InvalidArgument("--columns is required with --format csv (a CSV line has no header)");
      } else {
        columns = ColumnsOfInputs(inputs);
      }
    }
    if (plan.error.ok()) {
      auto d = RowMessageDecoder::Create(o_.format, std::move(columns), std::move(inputs), o_.map);
      if (d.ok()) plan.decoder = std::make_unique<RowMessageDecoder>(std::move(d).value());
      else plan.error = Status(d.status().code(), "model '" + ref.model + "': " + d.status().message());
    }
  }
  return &plans_.emplace(ref, std::move(plan)).first->second;
}

bool StreamProcessor::Impl::Retriable(rd_kafka_error_t* e, const char* what) {
  if (!rd_kafka_error_is_retriable(e)) return false;
  FERRY_LOG(kWarning, "kafka transaction call will be retried", ("call", what)("error", rd_kafka_error_string(e)));
  std::this_thread::sleep_for(kRetryPause);
  return true;
}

Status StreamProcessor::Impl::Fatal(rd_kafka_error_t* e, const char* what) {
  std::string msg = std::string(what) + ": " + rd_kafka_error_string(e);
  if (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__FENCED ||
      rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_PRODUCER_FENCED)
    msg += " (another process uses transactional.id '" + transactional_id_ +
           "': give each ferry stream process its own --instance-id)";
  return Unavailable(msg);
}

Status StreamProcessor::Impl::InitTransactions() {
  for (;;) {
    KafkaError e(rd_kafka_init_transactions(producer_.get(), kTxnCallTimeoutMs));
    if (!e) return Status::Ok();
    if (Retriable(e.get(), "init_transactions") || rd_kafka_error_code(e.get()) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      if (stop_ && stop_->load()) return Unavailable("stopped before the broker answered init_transactions");
      continue;
    }
    return Fatal(e.get(), "init_transactions");
  }
}

void StreamProcessor::Impl::LearnOutputTopics() {
  // Without this, librdkafka 2.0.2 learns a topic's partitions only after the first
  // produce() to it and holds that message until its next metadata refresh: the first
  // answers of a new stream waited about 600 ms (bench/stream_bench.py, paced run).
  output_topics_.clear();
  for (const auto& [flag, name] : {std::pair<const char*, const std::string&>{"--output-topic", o_.output_topic},
                                   {"--dead-letter-topic", o_.dead_letter_topic}}) {
    TopicHandle t(rd_kafka_topic_new(producer_.get(), name.c_str(), nullptr));
    if (!t) continue;
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(producer_.get(), 0, t.get(), &md, kTopicMetadataTimeoutMs);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) err = md->topics[0].err;
    if (md) rd_kafka_metadata_destroy(md);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      FERRY_LOG(kWarning, "output topic not known to the broker yet; its first messages wait until it is",
                ("flag", flag)("topic", name)("error", rd_kafka_err2str(err)));
    output_topics_.push_back(std::move(t));
  }
}

// ----------------------------------------------------------------- processing

void StreamProcessor::Impl::CollectBatch() {
  const auto deadline = Clock::now() + std::chrono::milliseconds(o_.linger_ms);
  while (batch_.size() < static_cast<size_t>(o_.batch_size)) {
    int wait_ms = 0;
    if (batch_.empty()) {
      wait_ms = 100;  // idle: wake now and then for the stop flag and the commit interval
    } else {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      wait_ms = static_cast<int>(left);
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), wait_ms);
    if (!m) {
      if (batch_.empty()) return;
      continue;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        FERRY_LOG(kWarning, "kafka consumer error", ("error", rd_kafka_message_errstr(m)));
      rd_kafka_message_destroy(m);
      continue;
    }
    InMsg in;
    in.src.topic = rd_kafka_topic_name(m->rkt);
    in.src.partition = m->partition;
    in.src.offset = m->offset;
    if (m->key) {
      in.has_key = true;
      in.key.assign(static_cast<const char*>(m->key), m->key_len);
    }
    if (m->payload) in.value.assign(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* val;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
        in.headers.push_back({name, val ? std::string(static_cast<const char*>(val), size) : std::string()});
    }
    rd_kafka_timestamp_type_t tstype;
    in.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_message_destroy(m);
    metrics_.MessagesIn(in.src.topic, 1);
    batch_.push_back(std::move(in));
  }
}

void StreamProcessor::Impl::DeadLetter(const InMsg& in, const Status& error, const char* stage, OutMsg* out) {
  out->dead = true;
  out->value = in.value;
  out->headers = DeadLetterHeaders(in.headers, in.src, error, stage);
}

std::vector<Result<InferResponse>> StreamProcessor::Impl::InferAll(std::vector<InferRequest> requests) {
  std::vector<Result<InferResponse>> results(requests.size(), Internal("not run"));
  Latch latch;
  for (size_t i = 0; i < requests.size(); ++i) {
    latch.Add();
    const auto t0 = Clock::now();
    server_.Infer(std::move(requests[i]), [this, &results, &latch, i, t0](Result<InferResponse> r) {
      metrics_.InferenceSeconds(std::chrono::duration<double>(Clock::now() - t0).count());
      results[i] = std::move(r);
      latch.Done();
    });
  }
  latch.Wait();
  return results;
}

void StreamProcessor::Impl::Process(std::vector<InMsg>& batch, std::vector<OutMsg>* out) {
  out->assign(batch.size(), OutMsg{});
  if (o_.format == MessageFormat::kV2Json) ProcessV2(batch, out);
  else ProcessRows(batch, out);
}

void StreamProcessor::Impl::ProcessV2(std::vector<InMsg>& batch, std::vector<OutMsg>* out) {
  std::vector<InferRequest> requests;
  std::vector<size_t> which;
  std::vector<ModelRef> refs;
  for (size_t i = 0; i < batch.size(); ++i) {
    auto ref = ResolveModel(batch[i].headers, o_.model);
    if (!ref.ok()) {
      DeadLetter(batch[i], ref.status(), "decode", &(*out)[i]);
      continue;
    }
    auto req = DecodeV2Message(batch[i].value, batch[i].key);
    if (!req.ok()) {
      DeadLetter(batch[i], req.status(), "decode", &(*out)[i]);
      continue;
    }
    req->model_name = ref->model;
    req->model_version = ref->version;
    requests.push_back(std::move(req).value());
    which.push_back(i);
    refs.push_back(std::move(ref).value());
  }
  auto results = InferAll(std::move(requests));
  for (size_t k = 0; k < results.size(); ++k) {
    const size_t i = which[k];
    if (!results[k].ok()) {
      DeadLetter(batch[i], results[k].status(), "inference", &(*out)[i]);
      continue;
    }
    auto body = EncodeV2Response(*results[k]);
    if (!body.ok()) {
      DeadLetter(batch[i], body.status(), "inference", &(*out)[i]);
      continue;
    }
    (*out)[i].value = std::move(body).value();
    (*out)[i].headers = OutputHeaders(batch[i].src, refs[k]);
  }
}

void StreamProcessor::Impl::ProcessRows(std::vector<InMsg>& batch, std::vector<OutMsg>* out) {
  // One request per model and per max_batch_size rows; a request that fails is tried
  // again row by row, so only the rows that fail are dead-lettered.
  struct Chunk {
    ModelRef ref;
    RowPlan* plan;
    std::vector<size_t> rows;          // batch indices
    std::vector<std::string> buffers;  // per input
    // Per input, where each row starts in its buffer, and its end (BYTES rows differ in length).
    std::vector<std::vector<size_t>> starts;
  };
  std::vector<Chunk> chunks;
  std::map<ModelRef, size_t> open;  // model -> its chunk being filled
  std::vector<std::vector<char>> row_buf;
  std::vector<std::string> row_strings;  // a BYTES input's elements, per input
  for (size_t i = 0; i < batch.size(); ++i) {
    auto ref = ResolveModel(batch[i].headers, o_.model);
    if (!ref.ok()) {
      DeadLetter(batch[i], ref.status(), "decode", &(*out)[i]);
      continue;
    }
    auto plan = PlanFor(*ref);
    if (!plan.ok() || !(*plan)->error.ok()) {
      DeadLetter(batch[i], plan.ok() ? (*plan)->error : plan.status(), "decode", &(*out)[i]);
      continue;
    }
    RowPlan* p = *plan;
    const auto& inputs = p->decoder->inputs();
    row_buf.resize(inputs.size());
    row_strings.assign(inputs.size(), std::string());
    std::vector<char*> dst(inputs.size());
    std::vector<std::string*> strings(inputs.size(), nullptr);
    for (size_t k = 0; k < inputs.size(); ++k) {
      row_buf[k].resize(inputs[k].width * DataTypeSize(inputs[k].datatype));
      dst[k] = row_buf[k].data();
      if (inputs[k].datatype == DataType::kBytes) strings[k] = &row_strings[k];
    }
    if (Status s = p->decoder->Decode(batch[i].value, dst.data(), strings.data()); !s.ok()) {
      DeadLetter(batch[i], s, "decode", &(*out)[i]);
      continue;
    }
    auto it = open.find(*ref);
    const size_t limit = p->max_batch > 0 ? static_cast<size_t>(p->max_batch) : 1;
    if (it == open.end() || chunks[it->second].rows.size() >= limit) {
      chunks.push_back(Chunk{*ref, p, {}, std::vector<std::string>(inputs.size()),
                             std::vector<std::vector<size_t>>(inputs.size(), std::vector<size_t>{0})});
      open[*ref] = chunks.size() - 1;
      it = open.find(*ref);
    }
    Chunk& c = chunks[it->second];
    c.rows.push_back(i);
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (strings[k] != nullptr) c.buffers[k].append(row_strings[k]);
      else c.buffers[k].append(row_buf[k].data(), row_buf[k].size());
      c.starts[k].push_back(c.buffers[k].size());
    }
  }
  auto request_of = [](const Chunk& c, size_t first, size_t n) {
    InferRequest req;
    req.model_name = c.ref.model;
    req.model_version = c.ref.version;
    const auto& inputs = c.plan->decoder->inputs();
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t begin = c.starts[k][first];
      Tensor t;
      t.name = inputs[k].name;
      t.datatype = inputs[k].datatype;
      if (c.plan->max_batch > 0) t.shape.push_back(static_cast<int64_t>(n));
      t.shape.insert(t.shape.end(), inputs[k].dims.begin(), inputs[k].dims.end());
      t.Own(c.buffers[k].substr(begin, c.starts[k][first + n] - begin));
      req.inputs.push_back(std::move(t));
    }
    return req;
  };
  std::vector<InferRequest> requests;
  for (const auto& c : chunks) requests.push_back(request_of(c, 0, c.rows.size()));
  auto results = InferAll(std::move(requests));
  // Chunks of several rows that failed: each row alone.
  std::vector<InferRequest> singles;
  std::vector<std::pair<size_t, size_t>> single_of;  // chunk, row within it
  for (size_t ci = 0; ci < chunks.size(); ++ci) {
    if (results[ci].ok() || chunks[ci].rows.size() == 1) continue;
    for (size_t r = 0; r < chunks[ci].rows.size(); ++r) {
      singles.push_back(request_of(chunks[ci], r, 1));
      single_of.push_back({ci, r});
    }
  }
  auto single_results = InferAll(std::move(singles));
  auto emit = [&](const Chunk& c, size_t r, size_t rows, std::shared_ptr<const InferResponse> resp) {
    const size_t i = c.rows[r];
    Result<InferResponse> slice = c.plan->max_batch > 0 ? SliceResponse(resp, r, rows)
                                                        : Result<InferResponse>(*resp);
    if (!slice.ok()) {
      DeadLetter(batch[i], slice.status(), "inference", &(*out)[i]);
      return;
    }
    slice->id = batch[i].key;
    auto body = EncodeV2Response(*slice);
    if (!body.ok()) {
      DeadLetter(batch[i], body.status(), "inference", &(*out)[i]);
      return;
    }
    (*out)[i].value = std::move(body).value();
    (*out)[i].headers = OutputHeaders(batch[i].src, c.ref);
  };
  for (size_t ci = 0; ci < chunks.size(); ++ci) {
    const Chunk& c = chunks[ci];
    if (results[ci].ok()) {
      auto resp = std::make_shared<const InferResponse>(std::move(results[ci]).value());
      for (size_t r = 0; r < c.rows.size(); ++r) emit(c, r, c.rows.size(), resp);
    } else if (c.rows.size() == 1) {
      DeadLetter(batch[c.rows[0]], results[ci].status(), "inference", &(*out)[c.rows[0]]);
    }
  }
  for (size_t k = 0; k < single_results.size(); ++k) {
    const auto [ci, r] = single_of[k];
    const Chunk& c = chunks[ci];
    if (!single_results[k].ok()) {
      DeadLetter(batch[c.rows[r]], single_results[k].status(), "inference", &(*out)[c.rows[r]]);
      continue;
    }
    // A chunk of one row, whose row 0 is the chunk's row r.
    Chunk one{c.ref, c.plan, {c.rows[r]}, {}, {}};
    emit(one, 0, 1, std::make_shared<const InferResponse>(std::move(single_results[k]).value()));
  }
}

// ----------------------------------------------------------------- producing, committing

void StreamProcessor::Impl::Produce(const std::vector<InMsg>& batch, std::vector<OutMsg>& out) {
  for (size_t i = 0; i < batch.size(); ++i) {
    const InMsg& in = batch[i];
    OutMsg& o = out[i];
    const std::string& topic = o.dead ? o_.dead_letter_topic : o_.output_topic;
    for (;;) {
      rd_kafka_headers_t* hdrs = rd_kafka_headers_new(o.headers.size());
      for (const auto& h : o.headers)
        rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_KEY(in.has_key ? in.key.data() : nullptr, in.has_key ? in.key.size() : 0),
          RD_KAFKA_V_VALUE(const_cast<char*>(o.value.data()), o.value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;  // the producer owns hdrs now
      rd_kafka_headers_destroy(hdrs);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(producer_.get(), 50);  // serve deliveries to make room
        continue;
      }
      // Not retriable here (a fatal producer state): the transaction's commit fails
      // and its messages are processed again.
      ++deliveries_failed_;
      FERRY_LOG(kWarning, "kafka produce failed", ("topic", topic)("error", rd_kafka_err2str(err)));
      break;
    }
    if (o.dead) {
      txn_dead_[{in.src.topic, o.headers.back().value}] += 1;
    } else {
      txn_out_[o_.output_topic] += 1;
    }
    txn_timestamps_.push_back(in.timestamp_ms);
    const TopicPartition tp{in.src.topic, in.src.partition};
    txn_next_[tp] = in.src.offset + 1;
    txn_first_.emplace(tp, in.src.offset);
  }
  rd_kafka_poll(producer_.get(), 0);
}

void StreamProcessor::Impl::Rewind(const std::map<TopicPartition, int64_t>& first_offsets) {
  // The messages taken but not processed yet are read again too: the consumer's position
  // is already past them.
  std::map<TopicPartition, int64_t> to = first_offsets;
  for (const auto& m : batch_) to.emplace(TopicPartition{m.src.topic, m.src.partition}, m.src.offset);
  batch_.clear();
  if (to.empty()) return;
  PartitionList l = ToList(to);
  KafkaError e(rd_kafka_seek_partitions(consumer_.get(), l.get(), 5000));
  if (e) FERRY_LOG(kWarning, "kafka seek failed", ("error", rd_kafka_error_string(e.get())));
}

namespace {
double NowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

Status StreamProcessor::Impl::CommitTransaction() {
  if (!txn_open_) return Status::Ok();
  std::unique_ptr<rd_kafka_consumer_group_metadata_t, void (*)(rd_kafka_consumer_group_metadata_t*)> cgmd(
      rd_kafka_consumer_group_metadata(consumer_.get()), rd_kafka_consumer_group_metadata_destroy);
  PartitionList offsets = ToList(txn_next_);
  for (;;) {
    KafkaError e(rd_kafka_send_offsets_to_transaction(producer_.get(), offsets.get(), cgmd.get(), kTxnCallTimeoutMs));
    if (!e) break;
    if (rd_kafka_error_txn_requires_abort(e.get())) {
      FERRY_LOG(kWarning, "transaction aborted", ("call", "send_offsets_to_transaction")("error", rd_kafka_error_string(e.get())));
      return AbortTransaction();
    }
    if (Retriable(e.get(), "send_offsets_to_transaction")) continue;
    return Fatal(e.get(), "send_offsets_to_transaction");
  }
  for (;;) {
    KafkaError e(rd_kafka_commit_transaction(producer_.get(), kTxnCallTimeoutMs));
    if (!e) break;
    if (rd_kafka_error_txn_requires_abort(e.get())) {
      FERRY_LOG(kWarning, "transaction aborted", ("call", "commit_transaction")("error", rd_kafka_error_string(e.get())));
      return AbortTransaction();
    }
    if (Retriable(e.get(), "commit_transaction")) continue;
    return Fatal(e.get(), "commit_transaction");
  }
  txn_open_ = false;
  metrics_.Transaction("committed");
  {
    // The consumer's statistics see only offsets it committed itself; storing what the
    // transaction committed keeps their consumer_lag_stored (the lag metric) current.
    // Stored offsets are never committed by the consumer (auto-commit is off).
    PartitionList stored = ToList(txn_next_);
    rd_kafka_offsets_store(consumer_.get(), stored.get());
  }
  CountDelivered();
  ClearPending();
  return Status::Ok();
}

// The outputs, dead letters and end-to-end latencies of the pending batch, once delivered.
void StreamProcessor::Impl::CountDelivered() {
  for (const auto& [topic, n] : txn_out_) metrics_.MessagesOut(topic, n);
  for (const auto& [key, n] : txn_dead_) metrics_.DeadLettered(key.first, key.second, n);
  const double now = NowMs();
  for (int64_t ts : txn_timestamps_)
    if (ts > 0) metrics_.EndToEndSeconds(std::max(0.0, (now - static_cast<double>(ts)) / 1000.0));
}

// Forgets the pending batch (its offsets, first offsets, timestamps and counts).
void StreamProcessor::Impl::ClearPending() {
  txn_next_.clear();
  txn_first_.clear();
  txn_timestamps_.clear();
  txn_out_.clear();
  txn_dead_.clear();
}

Status StreamProcessor::Impl::AbortTransaction() {
  for (;;) {
    KafkaError e(rd_kafka_abort_transaction(producer_.get(), kTxnCallTimeoutMs));
    if (!e) break;
    if (Retriable(e.get(), "abort_transaction")) continue;
    return Fatal(e.get(), "abort_transaction");
  }
  txn_open_ = false;
  metrics_.Transaction("aborted");
  Rewind(txn_first_);
  ClearPending();
  deliveries_failed_ = 0;
  return Status::Ok();
}

void StreamProcessor::Impl::FinishAtLeastOnce() {
  if (txn_next_.empty()) return;
  // Wait until every output is acknowledged (librdkafka retries while the broker is away).
  while (rd_kafka_flush(producer_.get(), 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    if (stop_ && stop_->load()) {
      FERRY_LOG(kWarning, "stopping with outputs not yet delivered; their inputs will be read again", );
      txn_next_.clear();
      txn_first_.clear();
      return;
    }
  }
  if (deliveries_failed_ > 0) {
    FERRY_LOG(kWarning, "outputs failed to deliver; reading their inputs again", ("failed", deliveries_failed_));
    deliveries_failed_ = 0;
    Rewind(txn_first_);
  } else {
    PartitionList l = ToList(txn_next_);
    rd_kafka_offsets_store(consumer_.get(), l.get());
    CountDelivered();
  }
  ClearPending();
}

Status StreamProcessor::Impl::Run(const std::atomic<bool>& stop) {
  stop_ = &stop;
  if (exactly_once()) FERRY_RETURN_IF_ERROR(InitTransactions());
  LearnOutputTopics();
  PartitionList topics(rd_kafka_topic_partition_list_new(static_cast<int>(o_.input_topics.size())));
  for (const auto& t : o_.input_topics) rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), topics.get()))
    return InvalidArgument(std::string("--input-topic: cannot subscribe: ") + rd_kafka_err2str(err));
  FERRY_LOG(kInfo, "stream running",
            ("group", o_.group)("guarantee", exactly_once() ? "exactly-once" : "at-least-once")(
                "transactional_id", exactly_once() ? transactional_id_ : std::string("-"))("output", o_.output_topic)(
                "dead_letters", o_.dead_letter_topic)("format", std::string(MessageFormatName(o_.format))));
  Status result;
  std::vector<OutMsg> out;
  while (!stop.load()) {
    CollectBatch();
    if (!fatal_.ok()) break;
    if (!batch_.empty()) {
      if (exactly_once() && !txn_open_) {
        KafkaError e(rd_kafka_begin_transaction(producer_.get()));
        if (e) {
          result = Fatal(e.get(), "begin_transaction");
          break;
        }
        txn_open_ = true;
        txn_began_ = Clock::now();
      }
      std::vector<InMsg> batch = std::move(batch_);
      batch_.clear();
      Process(batch, &out);
      Produce(batch, out);
      if (!exactly_once()) FinishAtLeastOnce();
    }
    rd_kafka_poll(producer_.get(), 0);
    if (exactly_once() && txn_open_ &&
        Clock::now() - txn_began_ >= std::chrono::milliseconds(o_.commit_interval_ms)) {
      if (Status s = CommitTransaction(); !s.ok()) {
        result = s;
        break;
      }
    }
  }
  if (!fatal_.ok() && result.ok()) result = fatal_;
  // Finish what was produced: commit it (or store its offsets) before leaving the group.
  if (result.ok()) {
    if (exactly_once()) result = CommitTransaction();
    else FinishAtLeastOnce();
  }
  if (!exactly_once() && result.ok()) rd_kafka_commit(consumer_.get(), nullptr, 0);
  rd_kafka_consumer_close(consumer_.get());
  rd_kafka_flush(producer_.get(), 5000);
  FERRY_LOG(kInfo, "stream stopped", );
  return result;
}

// ----------------------------------------------------------------- facade

StreamProcessor::StreamProcessor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StreamProcessor::~StreamProcessor() = default;

Result<std::unique_ptr<StreamProcessor>> StreamProcessor::Create(server::Server& server, StreamOptions options,
                                                                 StreamMetrics& metrics) {
  if (options.brokers.empty()) return InvalidArgument("--brokers is required");
  if (options.input_topics.empty()) return InvalidArgument("--input-topic is required");
  if (options.output_topic.empty()) return InvalidArgument("--output-topic is required");
  if (options.dead_letter_topic.empty()) return InvalidArgument("--dead-letter-topic is required");
  for (const auto& t : options.input_topics)
    if (t == options.output_topic || t == options.dead_letter_topic)
      return InvalidArgument("--input-topic '" + t + "' is also the output or dead-letter topic");
  if (options.batch_size < 1) return InvalidArgument("--batch-size must be 1 or more");
  if (options.linger_ms < 0) return InvalidArgument("--linger-ms must be 0 or more");
  if (options.commit_interval_ms < 0) return InvalidArgument("--commit-interval-ms must be 0 or more");
  if (options.transaction_timeout_ms < 1000) return InvalidArgument("--transaction-timeout-ms must be 1000 or more");
  if (options.statistics_interval_ms < 0) return InvalidArgument("--statistics-interval-ms must be 0 or more");
  if (options.format != MessageFormat::kV2Json && options.model.model.empty())
    return InvalidArgument("--model is required with --format " + std::string(MessageFormatName(options.format)) +
                           " (the row's columns are checked against its inputs before the first message)");
  auto impl = std::make_unique<Impl>(server, std::move(options), metrics);
  FERRY_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<StreamProcessor>(new StreamProcessor(std::move(impl)));
}

Status StreamProcessor::Run(const std::atomic<bool>& stop) { return impl_->Run(stop); }

}  // namespace ferry::stream
