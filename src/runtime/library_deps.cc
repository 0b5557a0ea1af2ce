#include "runtime/library_deps.h"

#include <elf.h>
#include <glob.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace ferry::runtime {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Reads `n` bytes at `offset`; false when the file is shorter.
bool ReadAt(std::ifstream& in, uint64_t offset, void* out, size_t n) {
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
  return static_cast<size_t>(in.gcount()) == n;
}

// The folders named in an ld.so.conf file, following its `include` globs.
void ConfDirs(const std::string& conf, int depth, std::vector<std::string>* dirs) {
  if (depth > 8) return;  // an include loop
  std::ifstream in(conf);
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    auto words = Split(line, ' ');
    if (words.empty()) continue;
    if (words[0] == "include" && words.size() > 1) {
      for (size_t w = 1; w < words.size(); ++w) {
        glob_t g{};
        if (glob(words[w].c_str(), 0, nullptr, &g) == 0)
          for (size_t i = 0; i < g.gl_pathc; ++i) ConfDirs(g.gl_pathv[i], depth + 1, dirs);
        globfree(&g);
      }
    } else {
      dirs->push_back(words[0]);
    }
  }
}

}  // namespace

Result<ElfDynamic> ReadElfDynamic(const std::filesystem::path& file) {
  const std::string what = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFound(what + ": cannot be opened");
  Elf64_Ehdr eh{};
  if (!ReadAt(in, 0, &eh, sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return InvalidArgument(what + ": not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return InvalidArgument(what + ": not a 64-bit little-endian ELF file");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096)
    return InvalidArgument(what + ": malformed program header table");
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  if (!ReadAt(in, eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr)))
    return InvalidArgument(what + ": truncated program header table");
  // Dynamic entries hold virtual addresses; the loadable segments map them to offsets.
  auto to_offset = [&ph](uint64_t vaddr) -> std::optional<uint64_t> {
    for (const auto& p : ph)
      if (p.p_type == PT_LOAD && vaddr >= p.p_vaddr && vaddr < p.p_vaddr + p.p_filesz)
        return vaddr - p.p_vaddr + p.p_offset;
    return std::nullopt;
  };
  const Elf64_Phdr* dyn = nullptr;
  for (const auto& p : ph)
    if (p.p_type == PT_DYNAMIC) dyn = &p;
  ElfDynamic out;
  if (dyn == nullptr) return out;  // a static object needs nothing
  std::vector<Elf64_Dyn> entries(dyn->p_filesz / sizeof(Elf64_Dyn));
  if (!ReadAt(in, dyn->p_offset, entries.data(), entries.size() * sizeof(Elf64_Dyn)))
    return InvalidArgument(what + ": truncated dynamic section");
  uint64_t strtab = 0, strsz = 0;
  std::vector<uint64_t> needed;
  std::optional<uint64_t> runpath, rpath;
  for (const auto& d : entries) {
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag == DT_STRTAB) strtab = d.d_un.d_ptr;
    if (d.d_tag == DT_STRSZ) strsz = d.d_un.d_val;
    if (d.d_tag == DT_NEEDED) needed.push_back(d.d_un.d_val);
    if (d.d_tag == DT_RUNPATH) runpath = d.d_un.d_val;
    if (d.d_tag == DT_RPATH) rpath = d.d_un.d_val;
  }
  auto str_offset = to_offset(strtab);
  if (!str_offset || strsz == 0 || strsz > (64u << 20)) return InvalidArgument(what + ": no readable string table");
  std::string strings(strsz, '\0');
  if (!ReadAt(in, *str_offset, strings.data(), strsz)) return InvalidArgument(what + ": truncated string table");
  auto str = [&strings](uint64_t at) { return at < strings.size() ? std::string(strings.c_str() + at) : std::string(); };
  for (uint64_t n : needed) out.needed.push_back(str(n));
  const std::string origin = std::filesystem::absolute(file).parent_path().string();
  if (runpath || rpath) {
    for (std::string dir : Split(str(runpath ? *runpath : *rpath), ':')) {
      for (const char* token : {"${ORIGIN}", "$ORIGIN"})
        for (size_t at; (at = dir.find(token)) != std::string::npos;) dir.replace(at, std::strlen(token), origin);
      out.runpath.push_back(dir);
    }
  }
  return out;
}

namespace {

// The folders ld.so would search for an object with `runpath`, in its order.
std::vector<std::string> SearchDirs(const std::vector<std::string>& runpath) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("LD_LIBRARY_PATH")) dirs = Split(env, ':');
  dirs.insert(dirs.end(), runpath.begin(), runpath.end());
  ConfDirs("/etc/ld.so.conf", 0, &dirs);
  for (const char* d : {"/lib", "/usr/lib", "/lib64", "/usr/lib64"}) dirs.emplace_back(d);
  return dirs;
}

std::optional<std::filesystem::path> FindIn(const std::string& soname, const std::vector<std::string>& dirs) {
  std::error_code ec;
  if (soname.find('/') != std::string::npos) {
    if (std::filesystem::exists(soname, ec)) return std::filesystem::path(soname);
    return std::nullopt;
  }
  for (const auto& d : dirs) {
    std::filesystem::path candidate = std::filesystem::path(d) / soname;
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::filesystem::path> FindLibrary(const std::string& soname, const std::vector<std::string>& runpath) {
  return FindIn(soname, SearchDirs(runpath));
}

Result<std::vector<std::string>> MissingLibraries(const std::filesystem::path& file) {
  FERRY_ASSIGN_OR_RETURN(ElfDynamic dyn, ReadElfDynamic(file));
  const auto dirs = SearchDirs(dyn.runpath);
  std::vector<std::string> missing;
  for (const auto& lib : dyn.needed)
    if (!FindIn(lib, dirs)) missing.push_back(lib);
  return missing;
}

}  // namespace ferry::runtime
