#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

// What a shared library needs from the dynamic loader, read from its ELF file without
// loading it: so `ferry runtimes` can say that a runtime module's framework library is
// missing in a few milliseconds, where dlopen'ing libtorch would take most of a second.
namespace ferry::runtime {

struct ElfDynamic {
  std::vector<std::string> needed;   // DT_NEEDED, in file order
  std::vector<std::string> runpath;  // DT_RUNPATH (or DT_RPATH) folders, $ORIGIN expanded
};

// Reads the dynamic section of a 64-bit little-endian ELF object. Errors name the file
// and what is wrong with it.
Result<ElfDynamic> ReadElfDynamic(const std::filesystem::path& file);

// Where the dynamic loader would find `soname` for an object with `runpath`: the
// folders of LD_LIBRARY_PATH, then `runpath`, then those of /etc/ld.so.conf (with its
// includes), then the default /lib and /usr/lib folders. nullopt when none holds it.
// An approximation of ld.so's search (no hwcaps subfolders, no stale-cache effects),
// good for a diagnosis; loading the library is the real test.
std::optional<std::filesystem::path> FindLibrary(const std::string& soname, const std::vector<std::string>& runpath);

// The DT_NEEDED entries of `file` that FindLibrary cannot find (direct dependencies
// only). An unreadable file is an error.
Result<std::vector<std::string>> MissingLibraries(const std::filesystem::path& file);

}  // namespace ferry::runtime
