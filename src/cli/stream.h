#pragma once

namespace ferry::cli {

// `ferry stream`: consumes Kafka topics in a consumer group, runs each message through a
// model in this process, and produces a V2 JSON response per message, exactly once by
// default (docs/streaming.md). Returns the exit code: 0 after SIGTERM/SIGINT with the
// open transaction committed, 1 when the stream failed (a model that did not load, a
// Kafka error retrying cannot mend), 2 for bad usage or a schema that does not fit
// the model.
int Stream(int argc, char** argv);

}  // namespace ferry::cli
