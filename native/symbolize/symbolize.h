// Names native addresses: function (demangled), module and offsets, from the
// ELF symbol tables of the loaded objects. .symtab as well as .dynsym, so
// static functions such as libuv's uv__io_poll get their names.
// Runs on the watchdog thread, never in a signal handler.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gmr {

struct Symbol {
  std::string name;        // demangled; empty when no symbol covers the address
  std::string module;      // path of the loaded object; empty when none maps it
  uintptr_t symbol_offset = 0;  // address - symbol start
  uintptr_t module_offset = 0;  // address - module load base
};

// A loaded object as the report lists it, for symbolizing its frames later.
struct LoadedObject {
  std::string path;
  uintptr_t base = 0;       // load bias (dlpi_addr): a frame's module offset is pc - base
  uintptr_t mapped = 0;     // its lowest mapped address
  std::string build_id;     // GNU build ID, raw bytes; empty when it has none
};

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Re-reads the list of loaded objects; tables of objects already read are kept.
  void Refresh();
  // False when no loaded object maps pc.
  bool Lookup(uintptr_t pc, Symbol* out);
  // The loaded objects as of the last Refresh, lowest mapped first.
  std::vector<LoadedObject> Objects() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace gmr
