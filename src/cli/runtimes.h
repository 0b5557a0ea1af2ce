#pragma once

namespace ferry::cli {

// `ferry runtimes`: prints the runtimes built into this binary (name, framework
// version, backend and platform names, model file names) and the plugins found in the
// plugins folder (--plugin-dir or FERRY_PLUGIN_DIR), as a table or, with --json, as
// JSON. Returns the process exit code.
int Runtimes(int argc, char** argv);

}  // namespace ferry::cli
