// Symbolizer: see symbolize.h.
//
// Symbol tables are read with pread rather than mmap: if a library is
// truncated or rewritten in place while we read it, we want a failed read,
// not a SIGBUS on the watchdog thread. A table is built the first time an
// address falls into its object and keeps only function symbols, as
// (address, size, name offset) entries. Names are read from the file (kept
// open, so it stays the one whose build ID matched) and demangled only when
// a lookup returns them.
//
// Not thread-safe: one Symbolizer belongs to one thread (the watchdog).

#include "symbolize.h"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "../util/proc.h"

namespace gmr {
namespace {

constexpr unsigned char kNativeByteOrder =
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;

// ---------------------------------------------------------------------------
// Reading ELF bytes, from a file or from memory, with every read bounds-checked
// so that corrupt headers can't make us allocate or read absurd amounts.

class ElfSource {
 public:
  virtual ~ElfSource() = default;

  bool Read(uint64_t offset, uint64_t size, void* dst) const {
    if (offset > size_ || size > size_ - offset) return false;
    return ReadAt(offset, size, static_cast<char*>(dst));
  }

  // Reads count consecutive T at offset into out.
  template <typename T>
  bool ReadArray(uint64_t offset, uint64_t count, std::vector<T>* out) const {
    if (count > size_ / sizeof(T)) return false;
    out->resize(count);
    return Read(offset, count * sizeof(T), out->data());
  }

  uint64_t size() const { return size_; }

  // Done reading for now: a file opened in the place of the spare gives it
  // back (FileSource).
  virtual void Release() {}

 protected:
  virtual bool ReadAt(uint64_t offset, uint64_t size, char* dst) const = 0;
  uint64_t size_ = 0;
};

// A file kept open once its table is read, so that names come from the
// very file whose build ID matched. With no descriptor free (EMFILE), it is
// opened in the place of the spare (OpenForReport, util/proc.h) and cannot
// stay open: the next module needs that place. It then gives it back once
// its table is read (Release), and each later read opens it again, after
// fstat finds the same file (device, inode, size and time), and closes it;
// until an open succeeds on its own, a descriptor free again: that one it
// keeps.
class FileSource : public ElfSource {
 public:
  explicit FileSource(const std::string& path) : path_(path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0 && (errno == EMFILE || errno == ENFILE)) {
      fd_ = OpenForReport(path, O_RDONLY);
      borrowed_ = fd_ >= 0;
    }
    open_errno_ = fd_ < 0 ? errno : 0;
    if (fd_ >= 0 && fstat(fd_, &id_) == 0) {
      size_ = id_.st_size;
    } else {
      Close();
      fd_ = -1;
    }
  }
  ~FileSource() override { Close(); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  // Why it could not be opened: EMFILE/ENFILE may pass, other errors stay.
  int open_errno() const { return open_errno_; }

  void Release() override {
    if (!borrowed_) return;
    Close();
    fd_ = -1;
  }

 private:
  void Close() {
    if (fd_ < 0) return;
    if (borrowed_) CloseForReport(fd_);
    else close(fd_);
  }

  // Opens the file again for a read after Release. False unless it is the
  // file the table was read from.
  bool Reopen() {
    fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    borrowed_ = fd_ < 0;
    if (fd_ < 0) fd_ = OpenForReport(path_, O_RDONLY);
    struct stat st;
    if (fd_ >= 0 && fstat(fd_, &st) == 0 && st.st_dev == id_.st_dev && st.st_ino == id_.st_ino &&
        st.st_size == id_.st_size && st.st_mtim.tv_sec == id_.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == id_.st_mtim.tv_nsec)
      return true;
    Close();
    fd_ = -1;
    return false;
  }

  bool ReadAt(uint64_t offset, uint64_t size, char* dst) const override {
    auto* self = const_cast<FileSource*>(this);
    const bool reopened = fd_ < 0;
    if (reopened && !self->Reopen()) return false;
    bool ok = PreadAll(offset, size, dst);
    if (reopened) self->Release();  // a borrowed descriptor goes back at once
    return ok;
  }

  bool PreadAll(uint64_t offset, uint64_t size, char* dst) const {
    while (size > 0) {
      ssize_t n = pread(fd_, dst, size, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;  // error, or the file shrank under us
      dst += n;
      offset += n;
      size -= n;
    }
    return true;
  }

  std::string path_;
  int fd_ = -1;
  bool borrowed_ = false;  // opened in the spare's place: given back after use
  int open_errno_ = 0;
  struct stat id_ = {};
};

// An ELF image mapped in our own address space (the vdso).
class MemorySource : public ElfSource {
 public:
  MemorySource(const void* base, size_t size)
      : base_(static_cast<const char*>(base)) {
    size_ = size;
  }

 private:
  bool ReadAt(uint64_t offset, uint64_t size, char* dst) const override {
    memcpy(dst, base_ + offset, size);
    return true;
  }

  const char* base_;
};

bool ReadElfHeader(const ElfSource& src, Elf64_Ehdr* eh) {
  return src.Read(0, sizeof *eh, eh) && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
         eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_ident[EI_DATA] == kNativeByteOrder;
}

// ---------------------------------------------------------------------------
// GNU build IDs, to make sure the file we read is the one that is loaded.

// The NT_GNU_BUILD_ID descriptor in a PT_NOTE segment, or "" if it has none.
// Notes are padded to the segment's alignment (4, or 8 for newer notes).
std::string FindBuildId(const unsigned char* notes, size_t size, uint64_t align) {
  const size_t pad = align == 8 ? 8 : 4;
  auto padded = [pad](size_t n) { return (n + pad - 1) & ~(pad - 1); };
  size_t pos = 0;
  while (size - pos >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr nh;
    memcpy(&nh, notes + pos, sizeof nh);
    const size_t name_at = pos + sizeof nh;
    const size_t desc_at = name_at + padded(nh.n_namesz);
    const size_t next = desc_at + padded(nh.n_descsz);
    if (next > size) break;
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == sizeof "GNU" &&
        memcmp(notes + name_at, "GNU", sizeof "GNU") == 0) {
      return std::string(reinterpret_cast<const char*>(notes) + desc_at, nh.n_descsz);
    }
    pos = next;
  }
  return {};
}

// Build ID of a loaded object, read from its mapped notes. A note outside
// every readable PT_LOAD segment is not mapped, so it is not touched.
std::string LoadedBuildId(const dl_phdr_info& info) {
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& note = info.dlpi_phdr[i];
    if (note.p_type != PT_NOTE) continue;
    const bool mapped = std::any_of(
        info.dlpi_phdr, info.dlpi_phdr + info.dlpi_phnum, [&](const ElfW(Phdr)& load) {
          return load.p_type == PT_LOAD && (load.p_flags & PF_R) &&
                 note.p_vaddr >= load.p_vaddr &&
                 note.p_vaddr + note.p_filesz <= load.p_vaddr + load.p_filesz;
        });
    if (!mapped) continue;
    const auto* notes = reinterpret_cast<const unsigned char*>(info.dlpi_addr + note.p_vaddr);
    std::string id = FindBuildId(notes, note.p_filesz, note.p_align);
    if (!id.empty()) return id;
  }
  return {};
}

std::string FileBuildId(const ElfSource& src, const Elf64_Ehdr& eh) {
  std::vector<Elf64_Phdr> phdrs;
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || !src.ReadArray(eh.e_phoff, eh.e_phnum, &phdrs)) {
    return {};
  }
  for (const Elf64_Phdr& ph : phdrs) {
    std::vector<unsigned char> notes;
    if (ph.p_type != PT_NOTE || !src.ReadArray(ph.p_offset, ph.p_filesz, &notes)) continue;
    std::string id = FindBuildId(notes.data(), notes.size(), ph.p_align);
    if (!id.empty()) return id;
  }
  return {};
}

// ---------------------------------------------------------------------------
// Function symbols of one object.

int BindRank(unsigned char bind) {
  return bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
}

// The function symbols of one object, sorted by address. Names stay in the
// file and are read when a lookup returns them: node's string table alone is
// 7 MB, and reading it took most of the time of a first lookup.
class SymbolTable {
 public:
  // Reads the defined functions of symtab (SHT_SYMTAB or SHT_DYNSYM) a chunk
  // at a time, and keeps src to read their names later. On failure the table
  // stays empty.
  void Build(std::unique_ptr<ElfSource> src, const std::vector<Elf64_Shdr>& sections,
             const Elf64_Shdr& symtab) {
    if (symtab.sh_entsize != sizeof(Elf64_Sym) || symtab.sh_link >= sections.size() ||
        symtab.sh_size > src->size()) {
      return;
    }
    const Elf64_Shdr& strtab = sections[symtab.sh_link];
    if (strtab.sh_size > kMaxNameOffset) return;
    constexpr uint64_t kChunk = 4096;
    const uint64_t count = symtab.sh_size / sizeof(Elf64_Sym);
    std::vector<Elf64_Sym> chunk;
    std::vector<Entry> entries;
    entries.reserve(count);
    for (uint64_t first = 0; first < count; first += kChunk) {
      const uint64_t n = std::min(kChunk, count - first);
      if (!src->ReadArray(symtab.sh_offset + first * sizeof(Elf64_Sym), n, &chunk)) return;
      for (const Elf64_Sym& sym : chunk) {
        const unsigned char type = ELF64_ST_TYPE(sym.st_info);
        // Undefined symbols are imports; in non-PIE executables they may
        // even carry the address of their PLT stub.
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
            sym.st_name == 0 || sym.st_name >= strtab.sh_size) {
          continue;
        }
        const uint32_t size = static_cast<uint32_t>(std::min<uint64_t>(sym.st_size, UINT32_MAX));
        entries.push_back({sym.st_value, size, sym.st_name,
                           static_cast<uint32_t>(BindRank(ELF64_ST_BIND(sym.st_info)))});
      }
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.addr < b.addr; });
    entries_ = std::move(entries);
    src_ = std::move(src);
    src_->Release();
    names_offset_ = strtab.sh_offset;
    names_size_ = strtab.sh_size;
  }

  // The symbol covering addr (link-time): its start and (mangled) name.
  // A zero-sized symbol covers everything up to the next symbol, as its
  // extent is unknown.
  bool Find(uint64_t addr, uint64_t* start, std::string* name) const {
    auto end = std::upper_bound(entries_.begin(), entries_.end(), addr,
                                [](uint64_t a, const Entry& e) { return a < e.addr; });
    if (end == entries_.begin()) return false;
    auto first = std::prev(end);
    while (first != entries_.begin() && std::prev(first)->addr == first->addr) --first;
    // [first, end) are aliases: pick one name among them.
    const Entry* best = nullptr;
    std::string best_name;
    for (auto it = first; it != end; ++it) {
      std::string candidate = ReadName(it->name);
      if (!candidate.empty() && (best == nullptr || Preferred(*it, candidate, *best, best_name))) {
        best = &*it;
        best_name = std::move(candidate);
      }
    }
    if (best == nullptr || (best->size != 0 && addr - best->addr >= best->size)) return false;
    *start = best->addr;
    *name = std::move(best_name);
    return true;
  }

 private:
  static constexpr uint64_t kMaxNameOffset = (1u << 30) - 1;

  struct Entry {
    uint64_t addr;       // link-time address
    uint32_t size;       // 0 for symbols of unknown size (hand-written assembly)
    uint32_t name : 30;  // offset in the string table
    uint32_t bind : 2;   // BindRank
  };

  // Among aliases, prefers the name people know: a sized symbol, then the
  // fewest leading underscores ("read" over "__read"), then global over weak
  // over local, then the shortest; the alphabetical order breaks ties so
  // that results don't depend on table order.
  static bool Preferred(const Entry& a, const std::string& name_a, const Entry& b,
                        const std::string& name_b) {
    auto rank = [](const Entry& e, const std::string& name) {
      return std::make_tuple(e.size == 0, strspn(name.c_str(), "_"), e.bind, name.size());
    };
    const auto ra = rank(a, name_a), rb = rank(b, name_b);
    return ra != rb ? ra < rb : name_a < name_b;
  }

  // The NUL-terminated name at offset in the string table; "" if unreadable.
  std::string ReadName(uint64_t offset) const {
    std::string name;
    char buf[256];
    for (uint64_t pos = offset; pos < names_size_; pos += sizeof buf) {
      const uint64_t n = std::min<uint64_t>(sizeof buf, names_size_ - pos);
      if (!src_->Read(names_offset_ + pos, n, buf)) return {};
      const char* nul = static_cast<const char*>(memchr(buf, '\0', n));
      name.append(buf, nul != nullptr ? nul - buf : n);
      if (nul != nullptr) break;
    }
    return name;
  }

  std::unique_ptr<ElfSource> src_;  // the file whose build ID matched, kept open
  uint64_t names_offset_ = 0, names_size_ = 0;
  std::vector<Entry> entries_;  // sorted by addr; aliases are adjacent
};

std::string Demangle(const char* name) {
  // Only "_Z" names are C++ symbols; __cxa_demangle would turn a C function
  // named "i" into "int".
  if (strncmp(name, "_Z", 2) != 0) return name;
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (demangled == nullptr) return name;
  std::string result(demangled);
  free(demangled);
  return result;
}

// ---------------------------------------------------------------------------
// Loaded objects.

struct Module {
  std::string path;       // reported to callers
  std::string file;       // what we read: /proc/self/exe for the main program
  uintptr_t load_bias = 0;  // dlpi_addr
  std::string build_id;   // of the loaded image; the file must match it
  const void* vdso = nullptr;  // the vdso has no file: its image is read from memory
  size_t vdso_size = 0;
  std::vector<std::pair<uintptr_t, uintptr_t>> segments;  // PT_LOAD [start, end)

  bool parsed = false;
  uintptr_t symbol_bias = 0;  // added to symbol values: load_bias, or 0 for ET_EXEC
  SymbolTable symbols;
};

// Fills m's table; on any failure the table stays empty and lookups still
// report the module.
void ReadSymbols(std::unique_ptr<ElfSource> src, Module* m) {
  Elf64_Ehdr eh;
  if (!ReadElfHeader(*src, &eh)) return;
  // A library upgraded on disk while the old version is loaded would give
  // plausible but wrong names.
  if (!m->build_id.empty() && FileBuildId(*src, eh) != m->build_id) return;
  std::vector<Elf64_Shdr> sections;
  if (eh.e_shentsize != sizeof(Elf64_Shdr) ||
      !src->ReadArray(eh.e_shoff, eh.e_shnum, &sections)) {
    return;
  }
  // .symtab holds everything .dynsym does and the static functions too;
  // stripped objects only have .dynsym.
  auto of_type = [&](uint32_t type) {
    return std::find_if(sections.begin(), sections.end(),
                        [type](const Elf64_Shdr& s) { return s.sh_type == type; });
  };
  auto symtab = of_type(SHT_SYMTAB);
  if (symtab == sections.end()) symtab = of_type(SHT_DYNSYM);
  if (symtab == sections.end()) return;
  // ET_EXEC symbol values are absolute; glibc reports a zero dlpi_addr for
  // such objects anyway, but don't rely on it.
  m->symbol_bias = eh.e_type == ET_EXEC ? 0 : m->load_bias;
  m->symbols.Build(std::move(src), sections, *symtab);
}

void LoadSymbols(Module* m) {
  if (m->vdso != nullptr) {
    m->parsed = true;
    ReadSymbols(std::make_unique<MemorySource>(m->vdso, m->vdso_size), m);
    return;
  }
  auto file = std::make_unique<FileSource>(m->file);
  // No descriptor free, not even the spare's place: not read, rather than
  // read as empty for good. The next lookup in it tries again.
  if (file->open_errno() == EMFILE || file->open_errno() == ENFILE) return;
  m->parsed = true;
  ReadSymbols(std::move(file), m);
}

// Bytes of the vdso image that are safely readable. The kernel maps the whole
// vdso file, whose section headers come after its loaded contents; the page
// holding the end of those contents is mapped in full, so rounding up to it
// takes in the section headers without reading past the mapping.
size_t VdsoImageSize(const dl_phdr_info& info) {
  uint64_t end = 0;
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info.dlpi_phdr[i];
    if (ph.p_type == PT_LOAD) end = std::max<uint64_t>(end, ph.p_offset + ph.p_filesz);
  }
  const uint64_t page = getauxval(AT_PAGESZ);
  return (end + page - 1) / page * page;
}

struct CollectContext {
  const std::string* exe_path;
  uintptr_t vdso;  // the vdso's ELF header, 0 if there is none
  std::vector<std::unique_ptr<Module>>* found;
};

// dl_iterate_phdr callback; runs under the loader lock, so it only copies.
int CollectModule(dl_phdr_info* info, size_t, void* data) {
  auto* ctx = static_cast<CollectContext*>(data);
  auto m = std::make_unique<Module>();
  m->load_bias = info->dlpi_addr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    m->segments.emplace_back(start, start + ph.p_memsz);
  }
  if (m->segments.empty()) return 0;
  m->build_id = LoadedBuildId(*info);

  const bool is_vdso = std::any_of(m->segments.begin(), m->segments.end(), [&](const auto& s) {
    return ctx->vdso >= s.first && ctx->vdso < s.second;
  });
  const bool is_main = !is_vdso && (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0');
  if (is_vdso) {
    m->path = info->dlpi_name != nullptr && info->dlpi_name[0] ? info->dlpi_name : "[vdso]";
    m->vdso = reinterpret_cast<const void*>(ctx->vdso);
    m->vdso_size = VdsoImageSize(*info);
  } else if (is_main) {
    m->path = *ctx->exe_path;
    m->file = "/proc/self/exe";  // the running inode, even if the path was deleted or replaced
  } else {
    m->path = info->dlpi_name;
    m->file = m->path;
  }
  ctx->found->push_back(std::move(m));
  return 0;
}

// The main program's path, for display.
std::string ExecutablePath() {
  char buf[PATH_MAX];
  if (realpath("/proc/self/exe", buf) != nullptr) return buf;
  // realpath fails once the file is deleted; the link text still names it.
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

struct Segment {
  uintptr_t start, end;
  Module* module;
};

}  // namespace

struct Symbolizer::Impl {
  std::string exe_path = ExecutablePath();
  // Keyed by (path, load bias), so tables survive Refresh.
  std::map<std::pair<std::string, uintptr_t>, std::unique_ptr<Module>> modules;
  std::vector<Segment> segments;  // of all modules, sorted by start

  Module* FindModule(uintptr_t pc) const {
    auto it = std::upper_bound(segments.begin(), segments.end(), pc,
                               [](uintptr_t a, const Segment& s) { return a < s.start; });
    if (it == segments.begin()) return nullptr;
    --it;
    return pc < it->end ? it->module : nullptr;
  }
};

Symbolizer::Symbolizer() : impl_(new Impl) { Refresh(); }

Symbolizer::~Symbolizer() { delete impl_; }

void Symbolizer::Refresh() {
  std::vector<std::unique_ptr<Module>> found;
  CollectContext ctx{&impl_->exe_path, getauxval(AT_SYSINFO_EHDR), &found};
  dl_iterate_phdr(CollectModule, &ctx);

  decltype(impl_->modules) modules;
  for (std::unique_ptr<Module>& m : found) {
    auto key = std::make_pair(m->path, m->load_bias);
    auto old = impl_->modules.find(key);
    // Same path and base but another build: a library was dlclose'd and a
    // new version dlopen'ed at the same place.
    if (old != impl_->modules.end() && old->second->build_id == m->build_id) {
      m = std::move(old->second);
    }
    modules[std::move(key)] = std::move(m);
  }
  impl_->modules = std::move(modules);

  impl_->segments.clear();
  for (const auto& [key, m] : impl_->modules) {
    for (const auto& [start, end] : m->segments) impl_->segments.push_back({start, end, m.get()});
  }
  std::sort(impl_->segments.begin(), impl_->segments.end(),
            [](const Segment& a, const Segment& b) { return a.start < b.start; });
}

std::vector<LoadedObject> Symbolizer::Objects() const {
  std::vector<LoadedObject> out;
  for (const auto& [key, m] : impl_->modules) {
    LoadedObject o;
    o.path = m->path;
    o.base = m->load_bias;
    o.mapped = m->segments.empty() ? 0 : m->segments.front().first;
    for (const auto& [start, end] : m->segments) o.mapped = std::min(o.mapped, start);
    o.build_id = m->build_id;
    out.push_back(std::move(o));
  }
  std::sort(out.begin(), out.end(), [](const LoadedObject& a, const LoadedObject& b) { return a.mapped < b.mapped; });
  return out;
}

bool Symbolizer::Lookup(uintptr_t pc, Symbol* out) {
  Module* m = impl_->FindModule(pc);
  if (m == nullptr) return false;
  if (!m->parsed) LoadSymbols(m);

  *out = Symbol{};
  out->module = m->path;
  out->module_offset = pc - m->load_bias;  // the address nm and addr2line use
  const uint64_t link_addr = pc - m->symbol_bias;
  uint64_t start;
  std::string name;
  if (m->symbols.Find(link_addr, &start, &name)) {
    out->name = Demangle(name.c_str());
    out->symbol_offset = link_addr - start;
  }
  return true;
}

}  // namespace gmr
