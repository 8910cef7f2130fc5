// Standalone test of the symbolizer; not part of the addon build.
//
// Build and run from the repository root, as a PIE (ET_DYN) and as a non-PIE
// (ET_EXEC) executable; add -fsanitize=address,undefined, or run under
// valgrind, to check memory errors:
//   g++ -std=c++17 -O2 -Wall -Wextra native/symbolize/symbolize_test.cc native/symbolize/symbolize.cc native/util/proc.cc -o /tmp/symbolize_test -ldl && /tmp/symbolize_test
//   g++ -std=c++17 -O2 -no-pie -Wall -Wextra native/symbolize/symbolize_test.cc native/symbolize/symbolize.cc native/util/proc.cc -o /tmp/symbolize_test_nopie -ldl && /tmp/symbolize_test_nopie
// symbolize_node_test.cc runs it inside node: node's own .symtab (libuv's
// static functions), timing, and stacks unwound by native/unwind/.

#include "symbolize.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../util/proc.h"

namespace outer::inner {
__attribute__((noinline)) int Twice(int x) { return 2 * x; }
}  // namespace outer::inner

__attribute__((noinline)) static int FileLocal(int x) { return x + 1; }

// Symbols of known extent that a compiler wouldn't produce: gmr_test_sized is
// 1 byte long and followed by 15 bytes no symbol covers; gmr_test_unsized has
// no size, so it covers everything up to the next symbol.
asm(R"(
  .text
  .p2align 4
  .globl gmr_test_sized
  .hidden gmr_test_sized
  .type gmr_test_sized, @function
gmr_test_sized:
  ret
  .size gmr_test_sized, 1
  .skip 15, 0xcc
  .globl gmr_test_unsized
  .hidden gmr_test_unsized
  .type gmr_test_unsized, @function
gmr_test_unsized:
  ret
  .skip 15, 0xcc
)");
extern "C" void gmr_test_sized();
extern "C" void gmr_test_unsized();

namespace {

int failures = 0;

void Check(bool ok, const char* what, const gmr::Symbol& s) {
  std::printf("%s %-45s name=\"%s\" +0x%zx module=%s +0x%zx\n", ok ? "PASS" : "FAIL", what,
              s.name.c_str(), s.symbol_offset, s.module.c_str(), s.module_offset);
  if (!ok) ++failures;
}

bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

uintptr_t Addr(void (*f)()) { return reinterpret_cast<uintptr_t>(f); }
uintptr_t Addr(int (*f)(int)) { return reinterpret_cast<uintptr_t>(f); }

void TestOwnFunctions(gmr::Symbolizer& sym) {
  gmr::Symbol s;
  bool ok = sym.Lookup(Addr(FileLocal) + 1, &s);
  Check(ok && s.name == "FileLocal(int)" && s.symbol_offset == 1 &&
            Contains(s.module, "symbolize_test"),
        "static function in the test binary", s);

  ok = sym.Lookup(Addr(outer::inner::Twice), &s);
  Check(ok && s.name == "outer::inner::Twice(int)" && s.symbol_offset == 0,
        "namespaced C++ function, demangled", s);

  ok = sym.Lookup(Addr(gmr_test_sized) + 4, &s);
  Check(ok && s.name.empty() && !s.module.empty(), "past the end of a sized symbol", s);

  ok = sym.Lookup(Addr(gmr_test_unsized) + 9, &s);
  Check(ok && s.name == "gmr_test_unsized" && s.symbol_offset == 9,
        "inside a zero-sized symbol's range", s);
}

void TestLibc(gmr::Symbolizer& sym) {
  // libc's own read, not a sanitizer's interceptor of the same name.
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  const auto read_addr = reinterpret_cast<uintptr_t>(dlsym(libc, "read"));
  dlclose(libc);
  gmr::Symbol s;
  const bool ok = sym.Lookup(read_addr + 3, &s);
  Check(ok && s.name == "read" && s.symbol_offset == 3 && Contains(s.module, "libc.so"),
        "libc's read (via dlsym)", s);
}

// The vdso has no file; its symbols come from the image in memory.
void TestVdso(gmr::Symbolizer& sym) {
  const uintptr_t vdso = getauxval(AT_SYSINFO_EHDR);
  if (vdso == 0) {
    std::printf("SKIP no vdso (valgrind?)\n");
    return;
  }
  gmr::Symbol s;
  bool named = false;
  for (uintptr_t pc = vdso; pc < vdso + 0x4000 && sym.Lookup(pc, &s); pc += 4) {
    if (Contains(s.name, "clock_gettime")) {
      named = true;
      break;
    }
  }
  Check(named, "clock_gettime in the vdso", s);
}

void TestUnmapped(gmr::Symbolizer& sym) {
  gmr::Symbol s;
  Check(!sym.Lookup(0x10, &s), "address 0x10 is in no module", s);

  void* anon = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Check(!sym.Lookup(reinterpret_cast<uintptr_t>(anon), &s), "anonymous mapping is in no module",
        s);
  munmap(anon, 4096);
}

void TestRefreshKeepsWorking(gmr::Symbolizer& sym) {
  sym.Refresh();
  gmr::Symbol s;
  const bool ok = sym.Lookup(Addr(FileLocal), &s);
  Check(ok && s.name == "FileLocal(int)", "lookup after Refresh", s);
}

// Every descriptor of the process taken (EMFILE), as a report may find it:
// the files are opened in the place of the spare (util/proc.h) and given
// back after each read. With the spare's place taken too, a module is not
// read (its name only), and read once a descriptor is free again, rather
// than left with an empty table for good.
void TestNoDescriptorFree() {
  gmr::ReserveReportDescriptors();
  rlimit old;
  getrlimit(RLIMIT_NOFILE, &old);
  rlimit low = old;
  low.rlim_cur = 64;
  if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
    std::printf("SKIP cannot lower RLIMIT_NOFILE\n");
    return;
  }
  std::vector<int> taken;
  for (int fd; (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) taken.push_back(fd);
  auto none_free = [] {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    return fd < 0 && errno == EMFILE;
  };
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  const auto read_addr = reinterpret_cast<uintptr_t>(dlsym(libc, "read"));
  dlclose(libc);
  size_t unopened = 0;
  gmr::TakeUnopenedFiles(&unopened);

  gmr::Symbolizer sym;
  gmr::Symbol s;
  bool ok = sym.Lookup(Addr(FileLocal) + 1, &s);
  Check(ok && s.name == "FileLocal(int)", "no descriptor free: the test binary", s);
  ok = sym.Lookup(read_addr + 3, &s);
  Check(ok && s.name == "read" && s.symbol_offset == 3, "no descriptor free: libc", s);
  ok = sym.Lookup(read_addr + 5, &s);  // its name read again: the file opened again
  Check(ok && s.name == "read" && s.symbol_offset == 5, "no descriptor free: libc, again", s);
  gmr::TakeUnopenedFiles(&unopened);
  Check(unopened == 0 && none_free(), "no descriptor free: every file opened, the spare taken back", s);

  // The spare's place taken as well.
  int borrowed = gmr::OpenForReport("/dev/null", O_RDONLY);
  gmr::Symbolizer other;
  ok = other.Lookup(read_addr + 3, &s);
  Check(borrowed >= 0 && ok && s.name.empty() && Contains(s.module, "libc.so"), "nor the spare: libc's name only", s);
  std::vector<std::string> paths = gmr::TakeUnopenedFiles(&unopened);
  Check(unopened == 1 && paths.size() == 1 && Contains(paths[0], "libc.so"), "nor the spare: libc noted as not opened", s);
  gmr::CloseForReport(borrowed);
  ok = other.Lookup(read_addr + 3, &s);
  Check(ok && s.name == "read" && none_free(), "the spare back: libc read after all", s);

  for (int fd : taken) close(fd);
  setrlimit(RLIMIT_NOFILE, &old);
}

}  // namespace

int main() {
  TestNoDescriptorFree();
  gmr::Symbolizer sym;
  TestOwnFunctions(sym);
  TestLibc(sym);
  TestVdso(sym);
  TestUnmapped(sym);
  TestRefreshKeepsWorking(sym);
  std::printf("%s\n", failures == 0 ? "all passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
