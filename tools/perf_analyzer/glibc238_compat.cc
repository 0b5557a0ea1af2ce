// Lets the perf_analyzer binary from the PyPI wheel (built for glibc >= 2.38 and
// libstdc++ from GCC >= 13) run on Debian bookworm (glibc 2.36, GCC 12).
//
// The binary needs only seven symbols that the older libraries lack. install.sh
// strips the version requirement from those seven references and links this
// library in, so the dynamic linker resolves them here; everything else still
// binds to the system libraries. Nothing here is called by ferry itself.
//
// Threading: every function is as thread-safe as the libc call it forwards to.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>  // keeps a static std::ios_base::Init, see below
#include <vector>

extern "C" {

// C23 spellings (glibc 2.38) of the integer parsers; they differ from the
// classic ones only by also accepting a "0b" binary prefix, which perf_analyzer's
// numeric command-line options never use.
long __isoc23_strtol(const char* s, char** end, int base) { return strtol(s, end, base); }
long long __isoc23_strtoll(const char* s, char** end, int base) { return strtoll(s, end, base); }
unsigned long __isoc23_strtoul(const char* s, char** end, int base) { return strtoul(s, end, base); }
unsigned long long __isoc23_strtoull(const char* s, char** end, int base) { return strtoull(s, end, base); }

int __isoc23_sscanf(const char* s, const char* format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsscanf(s, format, args);
  va_end(args);
  return n;
}

// GCC 13 programs call std::ios_base_library_init() so that libstdc++ sets up
// std::cout and friends. With GCC 12's libstdc++ that set-up is done by the static
// std::ios_base::Init object <iostream> places in every translation unit that
// includes it, this one included, and this library's constructors run before the
// program's. So the call has nothing left to do.
void ferry_ios_base_library_init() __asm__("_ZSt21ios_base_library_initv");
void ferry_ios_base_library_init() {}

// std::string::_M_replace_cold(p, len1, s, len2, how_much), GCC 13's out-of-line
// slow path of replace() when the replacement `s` points into the string's own
// buffer. It replaces the `len1` characters at `p` with the `len2` characters at
// `s` and shifts the `how_much` characters that follow; capacity is already
// sufficient and the caller sets the new length. Copying `s` aside first makes
// every overlap case the simple one.
void ferry_string_replace_cold(void* self, char* p, size_t len1, const char* s, size_t len2, size_t how_much)
    __asm__("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE15_M_replace_coldEPcmPKcmm");
void ferry_string_replace_cold(void* /*self*/, char* p, size_t len1, const char* s, size_t len2,
                               size_t how_much) {
  std::vector<char> replacement(s, s + len2);
  if (how_much != 0 && len1 != len2) std::memmove(p + len2, p + len1, how_much);
  if (len2 != 0) std::memcpy(p, replacement.data(), len2);
}

}  // extern "C"
