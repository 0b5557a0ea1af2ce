#pragma once

namespace ferry::cli {

// `ferry serve`: the inference server. Returns the process exit code.
int Serve(int argc, char** argv);

}  // namespace ferry::cli
