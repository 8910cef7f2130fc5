// Unwinder: see unwind.h.
//
// Each step finds the FDE covering the frame's pc through the object's
// .eh_frame_hdr, runs the CIE and FDE instructions up to that pc and applies
// the resulting row. Where no CFI covers a pc (JIT code, V8's embedded
// builtins) the step follows the frame pointer instead.
//
// Everything read from the thread's stack comes from the copy: the thread has
// moved on, so the live stack holds other data by now. Code and unwind
// tables of loaded objects are read in place; every such read is checked
// against the object's mapped segments, and the walk runs while the loader's
// lock is held (inside dl_iterate_phdr), so no object can be unloaded under it.

#include "unwind.h"

#include <link.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <vector>

namespace gmr {
namespace {

constexpr uint64_t Bit(int reg) { return uint64_t{1} << reg; }

#if defined(__aarch64__)
// DWARF register numbers on AArch64 (AADWARF64): x0-x30 are 0-30, sp 31.
enum Reg : int {
  kX19 = 19,
  kFp = 29,   // x29
  kLr = 30,   // x30: the return address column
  kSp = 31,
  kPc = 32,   // the pc of the frame (AADWARF64's number for it)
  kNumRegs = 33,
};
constexpr int kDefaultRaColumn = kLr;

// Registers a callee must preserve: without a CFI rule they keep their value
// in the caller. Any other register's value in the caller is lost; x30 too,
// which a call overwrites (a leaf's return address is read from it, in
// CfiStep, not passed on).
constexpr uint64_t kCalleeSaved = Bit(19) | Bit(20) | Bit(21) | Bit(22) | Bit(23) | Bit(24) |
                                  Bit(25) | Bit(26) | Bit(27) | Bit(28) | Bit(kFp);
#else
// DWARF register numbers on x86-64.
enum Reg : int {
  kRbx = 3,
  kFp = 6,    // rbp
  kSp = 7,    // rsp
  kR12 = 12,
  kR13 = 13,
  kR14 = 14,
  kR15 = 15,
  kPc = 16,   // rip: the return address column too
  kNumRegs = 17,
};
constexpr int kDefaultRaColumn = kPc;

// Registers a callee must preserve: without a CFI rule they keep their value
// in the caller. Any other register's value in the caller is lost.
constexpr uint64_t kCalleeSaved =
    Bit(kRbx) | Bit(kFp) | Bit(kR12) | Bit(kR13) | Bit(kR14) | Bit(kR15);
#endif
static_assert(kNumRegs <= 64, "RegState keeps a bit per register");

constexpr size_t kMaxFrames = 1024;        // caps the walk whatever max_frames says
constexpr size_t kMaxRememberedStates = 16;
constexpr size_t kMaxExpressionStack = 16;

// DW_EH_PE_* pointer encodings: a value format in the low nibble, how to
// apply it in bits 4-6, and an indirection flag.
enum : uint8_t {
  kPeAbsptr = 0x00,
  kPeUleb128 = 0x01,
  kPeUdata2 = 0x02,
  kPeUdata4 = 0x03,
  kPeUdata8 = 0x04,
  kPeSleb128 = 0x09,
  kPeSdata2 = 0x0a,
  kPeSdata4 = 0x0b,
  kPeSdata8 = 0x0c,
  kPePcrel = 0x10,
  kPeDatarel = 0x30,
  kPeIndirect = 0x80,
  kPeOmit = 0xff,
};

// DW_CFA_* instructions. The first three carry an operand in their low 6 bits.
enum : uint8_t {
  kCfaAdvanceLoc = 0x40,
  kCfaOffset = 0x80,
  kCfaRestore = 0xc0,
  kCfaNop = 0x00,
  kCfaSetLoc = 0x01,
  kCfaAdvanceLoc1 = 0x02,
  kCfaAdvanceLoc2 = 0x03,
  kCfaAdvanceLoc4 = 0x04,
  kCfaOffsetExtended = 0x05,
  kCfaRestoreExtended = 0x06,
  kCfaUndefined = 0x07,
  kCfaSameValue = 0x08,
  kCfaRegister = 0x09,
  kCfaRememberState = 0x0a,
  kCfaRestoreState = 0x0b,
  kCfaDefCfa = 0x0c,
  kCfaDefCfaRegister = 0x0d,
  kCfaDefCfaOffset = 0x0e,
  kCfaDefCfaExpression = 0x0f,
  kCfaExpression = 0x10,
  kCfaOffsetExtendedSf = 0x11,
  kCfaDefCfaSf = 0x12,
  kCfaDefCfaOffsetSf = 0x13,
  kCfaValOffset = 0x14,
  kCfaValOffsetSf = 0x15,
  kCfaValExpression = 0x16,
  kCfaAarch64NegateRaState = 0x2d,  // DW_CFA_GNU_window_save elsewhere (SPARC): not accepted there
  kCfaGnuArgsSize = 0x2e,
};

// DW_OP_* operations the expression evaluator supports.
enum : uint8_t {
  kOpDeref = 0x06,
  kOpConst1u = 0x08,
  kOpConst1s = 0x09,
  kOpConst2u = 0x0a,
  kOpConst2s = 0x0b,
  kOpConst4u = 0x0c,
  kOpConst4s = 0x0d,
  kOpConst8u = 0x0e,
  kOpConst8s = 0x0f,
  kOpConstu = 0x10,
  kOpConsts = 0x11,
  kOpAnd = 0x1a,
  kOpPlus = 0x22,
  kOpPlusUconst = 0x23,
  kOpShl = 0x24,
  kOpGe = 0x2a,
  kOpLit0 = 0x30,
  kOpLit31 = 0x4f,
  kOpBreg0 = 0x70,
  kOpBreg31 = 0x8f,
};

// ---------------------------------------------------------------------------
// Memory.

struct Range {
  uintptr_t start = 0, end = 0;
  bool Contains(uintptr_t addr, size_t len) const {
    return addr >= start && addr <= end && len <= end - addr;
  }
};

// A word of the thread's stack, from the copy only.
bool ReadStack(const StackCopy& stack, uintptr_t addr, uintptr_t* out) {
  if (stack.data == nullptr || addr < stack.base) return false;
  const uintptr_t offset = addr - stack.base;
  if (offset > stack.size || stack.size - offset < sizeof *out) return false;
  memcpy(out, stack.data + offset, sizeof *out);
  return true;
}

// A loaded object, as far as unwinding is concerned.
struct Module {
  std::vector<Range> segments;  // readable PT_LOAD segments: all we ever read
  Range eh_frame_hdr;           // empty when the object has no PT_GNU_EH_FRAME

  bool Contains(uintptr_t addr, size_t len) const {
    return std::any_of(segments.begin(), segments.end(),
                       [&](const Range& s) { return s.Contains(addr, len); });
  }
  // The segment holding addr, or an empty range.
  Range SegmentOf(uintptr_t addr) const {
    for (const Range& s : segments) {
      if (s.Contains(addr, 1)) return s;
    }
    return {};
  }
};

// Reads DWARF data from [pos, end) of a module. The caller has checked that
// the range is mapped. A failed read (past end, bad encoding) sticks: later
// reads return 0, so parsers check ok() once they are done.
class Reader {
 public:
  Reader(const Module& module, uintptr_t pos, uintptr_t end)
      : module_(&module), pos_(pos), end_(end) {}

  bool ok() const { return ok_; }
  bool AtEnd() const { return !ok_ || pos_ >= end_; }
  uintptr_t pos() const { return pos_; }
  uintptr_t end() const { return end_; }

  template <typename T>
  T Fixed() {
    T value{};
    const uintptr_t at = pos_;
    if (Take(sizeof value)) memcpy(&value, reinterpret_cast<const void*>(at), sizeof value);
    return value;
  }
  uint8_t U8() { return Fixed<uint8_t>(); }

  uint64_t Uleb() {
    uint64_t value = 0;
    for (unsigned shift = 0; ok_; shift += 7) {
      const uint8_t byte = U8();
      if (shift < 64) value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
    }
    return value;
  }

  int64_t Sleb() {
    uint64_t value = 0;
    unsigned shift = 0;
    uint8_t byte = 0;
    do {
      byte = U8();
      if (shift < 64) value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
    } while (ok_ && (byte & 0x80));
    if (shift < 64 && (byte & 0x40)) value |= ~uint64_t{0} << shift;
    return static_cast<int64_t>(value);
  }

  // The next n bytes as a reader of their own; this one moves past them.
  Reader Split(uint64_t n) {
    Reader sub(*module_, pos_, pos_);
    if (Take(n)) sub.end_ = pos_;
    sub.ok_ = ok_;
    return sub;
  }

  // A value in a DW_EH_PE_* format (the low nibble of an encoding).
  uint64_t Value(uint8_t format) {
    switch (format) {
      case kPeAbsptr:
      case kPeUdata8:
      case kPeSdata8: return Fixed<uint64_t>();
      case kPeUleb128: return Uleb();
      case kPeUdata2: return Fixed<uint16_t>();
      case kPeUdata4: return Fixed<uint32_t>();
      case kPeSleb128: return Sleb();
      case kPeSdata2: return static_cast<int64_t>(Fixed<int16_t>());
      case kPeSdata4: return static_cast<int64_t>(Fixed<int32_t>());
      default: return Fail();
    }
  }

  // An encoded pointer. data_base is what DW_EH_PE_datarel is relative to,
  // 0 where it has no meaning (x86-64 .eh_frame uses it only in the header).
  uintptr_t Pointer(uint8_t encoding, uintptr_t data_base) {
    const uintptr_t at = pos_;
    uintptr_t value = Value(encoding & 0x0f);
    switch (encoding & 0x70) {
      case kPeAbsptr: break;
      case kPePcrel: value += at; break;
      case kPeDatarel:
        if (data_base == 0) return Fail();
        value += data_base;
        break;
      default: return Fail();  // textrel, funcrel, aligned: not used on x86-64 Linux
    }
    if (ok_ && (encoding & kPeIndirect)) {
      if (!module_->Contains(value, sizeof value)) return Fail();
      memcpy(&value, reinterpret_cast<const void*>(value), sizeof value);
    }
    return ok_ ? value : 0;
  }

 private:
  bool Take(uint64_t n) {
    if (!ok_ || pos_ > end_ || n > end_ - pos_) {
      Fail();
      return false;
    }
    pos_ += n;
    return true;
  }
  uint64_t Fail() {
    ok_ = false;
    return 0;
  }

  const Module* module_;
  uintptr_t pos_, end_;
  bool ok_ = true;
};

// ---------------------------------------------------------------------------
// CIEs and FDEs.

struct Cie {
  uint64_t code_align = 1;
  int64_t data_align = 0;
  int ra_column = kDefaultRaColumn;
  uint8_t fde_encoding = kPeAbsptr;
  bool has_augmentation_data = false;  // "z": FDEs carry augmentation data too
  bool signal_frame = false;           // "S": the caller's pc is exact
  Range instructions;
};

struct Fde {
  Cie cie;
  uintptr_t pc_begin = 0, pc_end = 0;
  Range instructions;
};

// The framing shared by CIEs and FDEs.
struct Entry {
  uintptr_t id_at = 0;  // FDEs point to their CIE relative to this address
  uint32_t id = 0;      // 0 for a CIE
  Range body;           // after the id, up to the end of the entry
};

// Reads the entry at addr; false for the terminator or an entry that isn't
// mapped in full.
bool ReadEntry(const Module& m, uintptr_t addr, Entry* e) {
  Reader r(m, addr, m.SegmentOf(addr).end);
  uint64_t length = r.Fixed<uint32_t>();
  if (length == 0xffffffff) length = r.Fixed<uint64_t>();  // 64-bit DWARF; the id stays 4 bytes
  if (!r.ok() || length == 0 || length > r.end() - r.pos()) return false;
  Reader body = r.Split(length);
  e->id_at = body.pos();
  e->id = body.Fixed<uint32_t>();
  e->body = {body.pos(), body.end()};
  return body.ok();
}

// Parses the augmentation string and data; false for augmentations we can't
// skip over, as everything after them would be misread.
bool ParseAugmentation(const char* augmentation, Reader* r, Cie* cie) {
  if (augmentation[0] == '\0') return true;
  if (augmentation[0] != 'z') return false;
  cie->has_augmentation_data = true;
  Reader data = r->Split(r->Uleb());
  for (const char* c = augmentation + 1; *c != '\0'; ++c) {
    switch (*c) {
      case 'L': data.U8(); break;  // LSDA encoding: the pointer itself is in the FDE
      case 'P': data.Value(data.U8() & 0x0f); break;  // the personality routine: skipped
      case 'R': cie->fde_encoding = data.U8(); break;
      case 'S': cie->signal_frame = true; break;
      default: return false;
    }
  }
  return data.ok();
}

bool ParseCie(const Module& m, uintptr_t addr, Cie* cie) {
  Entry e;
  if (!ReadEntry(m, addr, &e) || e.id != 0) return false;
  Reader r(m, e.body.start, e.body.end);
  const uint8_t version = r.U8();
  if (version != 1 && version != 3 && version != 4) return false;
  char augmentation[8];
  size_t len = 0;
  for (char c = static_cast<char>(r.U8()); r.ok() && c != '\0'; c = static_cast<char>(r.U8())) {
    if (len + 1 == sizeof augmentation) return false;
    augmentation[len++] = c;
  }
  augmentation[len] = '\0';
  if (version == 4) {
    if (r.U8() != sizeof(uintptr_t) || r.U8() != 0) return false;  // address and segment sizes
  }
  cie->code_align = r.Uleb();
  cie->data_align = r.Sleb();
  const uint64_t ra_column = version == 1 ? r.U8() : r.Uleb();
  if (ra_column >= kNumRegs) return false;
  cie->ra_column = static_cast<int>(ra_column);
  if (!ParseAugmentation(augmentation, &r, cie) || !r.ok()) return false;
  cie->instructions = {r.pos(), r.end()};
  return true;
}

bool ParseFde(const Module& m, uintptr_t addr, Fde* fde) {
  Entry e;
  if (!ReadEntry(m, addr, &e) || e.id == 0 || !ParseCie(m, e.id_at - e.id, &fde->cie)) {
    return false;
  }
  Reader r(m, e.body.start, e.body.end);
  fde->pc_begin = r.Pointer(fde->cie.fde_encoding, 0);
  fde->pc_end = fde->pc_begin + r.Value(fde->cie.fde_encoding & 0x0f);
  if (fde->cie.has_augmentation_data) r.Split(r.Uleb());  // the LSDA pointer
  fde->instructions = {r.pos(), r.end()};
  return r.ok();
}

bool FdeCovers(const Module& m, uintptr_t addr, uintptr_t pc, Fde* fde) {
  return ParseFde(m, addr, fde) && pc >= fde->pc_begin && pc < fde->pc_end;
}

// The slow path for an .eh_frame_hdr without a usable search table.
bool ScanEhFrame(const Module& m, uintptr_t eh_frame, uintptr_t pc, Fde* fde) {
  Entry e;
  for (uintptr_t addr = eh_frame; ReadEntry(m, addr, &e); addr = e.body.end) {
    if (e.id != 0 && FdeCovers(m, addr, pc, fde)) return true;
  }
  return false;
}

bool FindFde(const Module& m, uintptr_t pc, Fde* fde) {
  const Range hdr = m.eh_frame_hdr;
  if (hdr.start == hdr.end) return false;
  // Everything in the header, including the table, is relative to its start.
  Reader r(m, hdr.start, hdr.end);
  const uint8_t version = r.U8();
  const uint8_t eh_frame_encoding = r.U8();
  const uint8_t count_encoding = r.U8();
  const uint8_t table_encoding = r.U8();
  const uintptr_t eh_frame = r.Pointer(eh_frame_encoding, hdr.start);
  if (!r.ok() || version != 1) return false;
  if (count_encoding == kPeOmit || table_encoding != (kPeDatarel | kPeSdata4)) {
    return ScanEhFrame(m, eh_frame, pc, fde);
  }
  const uint64_t count = r.Pointer(count_encoding, hdr.start);
  struct TableEntry {
    int32_t initial_loc, fde;
  };
  const uintptr_t table = r.pos();
  if (!r.ok() || count > (hdr.end - table) / sizeof(TableEntry)) return false;

  auto entry = [&](uint64_t i) {
    TableEntry t;
    memcpy(&t, reinterpret_cast<const void*>(table + i * sizeof t), sizeof t);
    return t;
  };
  // The last entry starting at or before pc.
  uint64_t lo = 0, hi = count;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (hdr.start + entry(mid).initial_loc <= pc) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo > 0 && FdeCovers(m, hdr.start + entry(lo - 1).fde, pc, fde);
}

// ---------------------------------------------------------------------------
// CFA programs.

enum class RuleKind : uint8_t {
  kSameValue,
  kUndefined,
  kOffset,        // saved at CFA + offset
  kValOffset,     // is CFA + offset
  kRegister,      // is in register reg
  kExpression,    // saved at the address expr computes
  kValExpression  // is what expr computes
};

struct RegRule {
  RuleKind kind = RuleKind::kSameValue;
  int64_t offset = 0;
  uint64_t reg = 0;
  Range expr;  // a DWARF expression in the module
};

struct CfaRule {
  bool is_expression = false;
  uint64_t reg = kNumRegs;  // no CFA until the CIE defines one
  int64_t offset = 0;
  Range expr;
};

struct Row {
  CfaRule cfa;
  RegRule regs[kNumRegs];
};

// factor * data_align, wrapping rather than overflowing on garbage.
int64_t Scale(int64_t factor, int64_t align) {
  return static_cast<int64_t>(static_cast<uint64_t>(factor) * static_cast<uint64_t>(align));
}

// A length-prefixed DWARF expression.
Range ReadBlock(Reader* r) {
  const Reader block = r->Split(r->Uleb());
  return {block.pos(), block.end()};
}

// Runs CFA instructions up to the row that applies at one pc.
class CfaProgram {
 public:
  // initial holds the CIE's rules, which DW_CFA_restore goes back to (null
  // while running the CIE itself).
  CfaProgram(const Cie& cie, const Row* initial, Row* row)
      : cie_(cie), initial_(initial), row_(row) {}

  // Runs the instructions in r, whose first row applies at loc, until the row
  // for target. False on malformed or unsupported instructions.
  bool Run(Reader r, uintptr_t loc, uintptr_t target) {
    while (!r.AtEnd()) {
      const uint8_t op = r.U8();
      uintptr_t next = loc;
      if (Advance(op, &r, &next)) {
        if (next > target) return r.ok();  // the current row covers target
        loc = next;
      } else if (!Execute(op, &r)) {
        return false;
      }
    }
    return r.ok();
  }

 private:
  // For the instructions that start a new row: moves *loc to its location.
  bool Advance(uint8_t op, Reader* r, uintptr_t* loc) const {
    uint64_t delta;
    if ((op & 0xc0) == kCfaAdvanceLoc) {
      delta = op & 0x3f;
    } else if (op == kCfaAdvanceLoc1) {
      delta = r->U8();
    } else if (op == kCfaAdvanceLoc2) {
      delta = r->Fixed<uint16_t>();
    } else if (op == kCfaAdvanceLoc4) {
      delta = r->Fixed<uint32_t>();
    } else if (op == kCfaSetLoc) {
      *loc = r->Pointer(cie_.fde_encoding, 0);
      return true;
    } else {
      return false;
    }
    *loc += delta * cie_.code_align;
    return true;
  }

  void Set(uint64_t reg, const RegRule& rule) {
    if (reg < kNumRegs) row_->regs[reg] = rule;  // rules for vector registers don't matter here
  }
  void Restore(uint64_t reg) {
    if (reg < kNumRegs) row_->regs[reg] = initial_ ? initial_->regs[reg] : RegRule{};
  }

  // Applies one instruction that changes the current row.
  bool Execute(uint8_t op, Reader* r) {
    switch (op & 0xc0) {
      case kCfaOffset: {
        const int64_t factored = static_cast<int64_t>(r->Uleb());
        Set(op & 0x3f, {RuleKind::kOffset, Scale(factored, cie_.data_align), 0, {}});
        return true;
      }
      case kCfaRestore:
        Restore(op & 0x3f);
        return true;
    }
    switch (op) {
      case kCfaNop:
        break;
      case kCfaGnuArgsSize:  // only matters to exception handling
        r->Uleb();
        break;
#if defined(__aarch64__)
      case kCfaAarch64NegateRaState:  // return addresses are signed from here: StripReturnAddress
        break;
#endif
      case kCfaOffsetExtended:
      case kCfaOffsetExtendedSf:
      case kCfaValOffset:
      case kCfaValOffsetSf: {
        const uint64_t reg = r->Uleb();
        const bool is_signed = op == kCfaOffsetExtendedSf || op == kCfaValOffsetSf;
        const int64_t factored = is_signed ? r->Sleb() : static_cast<int64_t>(r->Uleb());
        const bool is_val = op == kCfaValOffset || op == kCfaValOffsetSf;
        const RuleKind kind = is_val ? RuleKind::kValOffset : RuleKind::kOffset;
        Set(reg, {kind, Scale(factored, cie_.data_align), 0, {}});
        break;
      }
      case kCfaRestoreExtended:
        Restore(r->Uleb());
        break;
      case kCfaUndefined:
        Set(r->Uleb(), {RuleKind::kUndefined, 0, 0, {}});
        break;
      case kCfaSameValue:
        Set(r->Uleb(), RegRule{});
        break;
      case kCfaRegister: {
        const uint64_t reg = r->Uleb();
        Set(reg, {RuleKind::kRegister, 0, r->Uleb(), {}});
        break;
      }
      case kCfaExpression:
      case kCfaValExpression: {
        const uint64_t reg = r->Uleb();
        const bool is_val = op == kCfaValExpression;
        Set(reg, {is_val ? RuleKind::kValExpression : RuleKind::kExpression, 0, 0, ReadBlock(r)});
        break;
      }
      case kCfaRememberState:
        // The row includes the CFA: GCC's epilogues rely on that.
        if (remembered_.size() == kMaxRememberedStates) return false;
        remembered_.push_back(*row_);
        break;
      case kCfaRestoreState:
        if (remembered_.empty()) return false;
        *row_ = remembered_.back();
        remembered_.pop_back();
        break;
      case kCfaDefCfa: {
        const uint64_t reg = r->Uleb();
        row_->cfa = {false, reg, static_cast<int64_t>(r->Uleb()), {}};
        break;
      }
      case kCfaDefCfaSf: {
        const uint64_t reg = r->Uleb();
        row_->cfa = {false, reg, Scale(r->Sleb(), cie_.data_align), {}};
        break;
      }
      case kCfaDefCfaRegister:
        row_->cfa.is_expression = false;
        row_->cfa.reg = r->Uleb();
        break;
      case kCfaDefCfaOffset:
        row_->cfa.offset = static_cast<int64_t>(r->Uleb());
        break;
      case kCfaDefCfaOffsetSf:
        row_->cfa.offset = Scale(r->Sleb(), cie_.data_align);
        break;
      case kCfaDefCfaExpression:
        row_->cfa = {true, 0, 0, ReadBlock(r)};
        break;
      default:
        return false;
    }
    return true;
  }

  const Cie& cie_;
  const Row* initial_;
  Row* row_;
  std::vector<Row> remembered_;
};

// ---------------------------------------------------------------------------
// Register state and steps.

struct RegState {
  uintptr_t value[kNumRegs] = {};
  uint64_t known = 0;  // bit per register
  // AArch64: this frame's pc came from x30, not from the stack, so its sp
  // may equal its callee's (a leaf that stores nothing).
  bool ra_in_register = false;
  // AArch64: sp is a lower bound only, from a frame-pointer step: V8's
  // entry frames save the callee-saved registers above their frame record,
  // so the caller's sp lies higher than the record's end.
  bool sp_lower_bound = false;

  bool Get(uint64_t reg, uintptr_t* out) const {
    if (reg >= kNumRegs || !(known & Bit(static_cast<int>(reg)))) return false;
    *out = value[reg];
    return true;
  }
  bool Known(int reg) const { return known & Bit(reg); }
  void Set(int reg, uintptr_t v) {
    value[reg] = v;
    known |= Bit(reg);
  }
};

// Evaluates the DWARF expressions found in CFI on x86-64 Linux: the PLT's CFA
// (rsp + 8, plus 8 once the stub has pushed its index) and glibc's signal
// frame (registers saved in the ucontext). Anything else fails. initial, if
// not null, is pushed first (the CFA, for register rules).
bool Evaluate(Reader r, const RegState& regs, const StackCopy& stack, const uintptr_t* initial,
              uintptr_t* result) {
  uintptr_t st[kMaxExpressionStack];
  size_t depth = 0;
  auto push = [&](uintptr_t v) {
    if (depth == kMaxExpressionStack) return false;
    st[depth++] = v;
    return true;
  };
  if (initial != nullptr) push(*initial);

  while (!r.AtEnd()) {
    const uint8_t op = r.U8();
    uintptr_t value;
    if (op >= kOpLit0 && op <= kOpLit31) {
      value = op - kOpLit0;
    } else if (op >= kOpBreg0 && op <= kOpBreg31) {
      if (!regs.Get(op - kOpBreg0, &value)) return false;
      value += r.Sleb();
    } else {
      switch (op) {
        case kOpConst1u: value = r.Fixed<uint8_t>(); break;
        case kOpConst1s: value = r.Fixed<int8_t>(); break;
        case kOpConst2u: value = r.Fixed<uint16_t>(); break;
        case kOpConst2s: value = r.Fixed<int16_t>(); break;
        case kOpConst4u: value = r.Fixed<uint32_t>(); break;
        case kOpConst4s: value = r.Fixed<int32_t>(); break;
        case kOpConst8u:
        case kOpConst8s: value = r.Fixed<uint64_t>(); break;
        case kOpConstu: value = r.Uleb(); break;
        case kOpConsts: value = r.Sleb(); break;
        case kOpDeref:
          if (depth == 0 || !ReadStack(stack, st[--depth], &value)) return false;
          break;
        case kOpPlusUconst:
          if (depth == 0) return false;
          value = st[--depth] + r.Uleb();
          break;
        case kOpAnd:
        case kOpPlus:
        case kOpShl:
        case kOpGe: {
          if (depth < 2) return false;
          const uintptr_t b = st[--depth];
          const uintptr_t a = st[--depth];
          value = op == kOpAnd    ? a & b
                  : op == kOpPlus ? a + b
                  : op == kOpShl  ? (b < 64 ? a << b : 0)
                                  : static_cast<intptr_t>(a) >= static_cast<intptr_t>(b);
          break;
        }
        default:
          return false;
      }
    }
    if (!push(value)) return false;
  }
  if (!r.ok() || depth == 0) return false;
  *result = st[depth - 1];
  return true;
}

// The caller's value of reg under rule; false when it can't be known.
bool Recover(const Module& m, const RegRule& rule, int reg, uintptr_t cfa, const RegState& regs,
             const StackCopy& stack, uintptr_t* out) {
  uintptr_t addr;
  switch (rule.kind) {
    case RuleKind::kSameValue:
      return (kCalleeSaved & Bit(reg)) && regs.Get(reg, out);
    case RuleKind::kUndefined:
      return false;
    case RuleKind::kOffset:
      if (ReadStack(stack, cfa + rule.offset, out)) return true;
      // GCC's epilogues keep the rule after popping the register: a slot
      // below rsp has been popped, so the register holds the caller's value
      // again (and the copy may well start at rsp). AArch64's epilogues
      // (ldp x29, x30, [sp], #16) likewise.
      return cfa + rule.offset < regs.value[kSp] && regs.Get(reg, out);
    case RuleKind::kValOffset:
      *out = cfa + rule.offset;
      return true;
    case RuleKind::kRegister:
      return regs.Get(rule.reg, out);
    case RuleKind::kExpression:
      return Evaluate(Reader(m, rule.expr.start, rule.expr.end), regs, stack, &cfa, &addr) &&
             ReadStack(stack, addr, out);
    case RuleKind::kValExpression:
      return Evaluate(Reader(m, rule.expr.start, rule.expr.end), regs, stack, &cfa, out);
  }
  return false;
}

enum class Step { kOk, kOutermost, kFailed };

// The row of fde that applies at pc.
bool FindRow(const Module& m, const Fde& fde, uintptr_t pc, Row* row) {
  const Cie& cie = fde.cie;
  Row initial;
  if (!CfaProgram(cie, nullptr, &initial)
           .Run(Reader(m, cie.instructions.start, cie.instructions.end), fde.pc_begin, pc)) {
    return false;
  }
  *row = initial;
  return CfaProgram(cie, &initial, row)
      .Run(Reader(m, fde.instructions.start, fde.instructions.end), fde.pc_begin, pc);
}

bool ComputeCfa(const Module& m, const CfaRule& rule, const RegState& regs,
                const StackCopy& stack, uintptr_t* cfa) {
  if (rule.is_expression) {
    return Evaluate(Reader(m, rule.expr.start, rule.expr.end), regs, stack, nullptr, cfa);
  }
  if (!regs.Get(rule.reg, cfa)) return false;
  *cfa += rule.offset;
  return true;
}

// Replaces *regs, the registers of the frame executing at pc, with its caller's.
Step CfiStep(const Module& m, const Fde& fde, uintptr_t pc, const StackCopy& stack,
             RegState* regs) {
  Row row;
  uintptr_t cfa;
  if (!FindRow(m, fde, pc, &row) || !ComputeCfa(m, row.cfa, *regs, stack, &cfa)) {
    return Step::kFailed;
  }
#if defined(__aarch64__)
  // Where sp is only a lower bound, a CFA relative to it is wrong; GCC's
  // AArch64 CFI keeps it on sp even once x29 is set. A function that saved
  // x29 and x30 side by side laid its frame record there and points x29 at
  // it (AAPCS64): the CFA is then x29 less x29's offset. Only past the
  // prologue, which every frame but the first is.
  uintptr_t fp;
  const RegRule& fp_rule = row.regs[kFp];
  const RegRule& lr_rule = row.regs[kLr];
  if (regs->sp_lower_bound && !row.cfa.is_expression && row.cfa.reg == kSp &&
      fp_rule.kind == RuleKind::kOffset && lr_rule.kind == RuleKind::kOffset &&
      lr_rule.offset == fp_rule.offset + 8 && regs->Get(kFp, &fp)) {
    const uintptr_t from_fp = fp - static_cast<uintptr_t>(fp_rule.offset);
    if (from_fp < cfa) return Step::kFailed;
    cfa = from_fp;
  }
#endif
  // An undefined return address marks the outermost frame (_start, clone).
  if (row.regs[fde.cie.ra_column].kind == RuleKind::kUndefined) return Step::kOutermost;

  RegState caller;
  for (int reg = 0; reg < kNumRegs; ++reg) {
    uintptr_t value;
    if (Recover(m, row.regs[reg], reg, cfa, *regs, stack, &value)) caller.Set(reg, value);
  }
  if (!caller.Known(kSp)) caller.Set(kSp, cfa);  // the CFA is the caller's sp by definition
  uintptr_t return_address;
#if defined(__aarch64__)
  // A leaf, or a function before it saved x30 (or after it restored it):
  // no rule, the return address is still in x30. The caller's x30 is lost
  // either way (the call that returns here overwrote it).
  const RegRule& ra_rule = row.regs[fde.cie.ra_column];
  caller.ra_in_register = ra_rule.kind == RuleKind::kSameValue || ra_rule.kind == RuleKind::kRegister;
  if (ra_rule.kind == RuleKind::kSameValue) {
    if (!regs->Get(fde.cie.ra_column, &return_address)) return Step::kFailed;
  } else if (!caller.Get(fde.cie.ra_column, &return_address)) {
    return Step::kFailed;
  }
  caller.known &= ~Bit(kLr);
  return_address = StripReturnAddress(return_address);
#else
  if (!caller.Get(fde.cie.ra_column, &return_address)) return Step::kFailed;
#endif
  caller.Set(kPc, return_address);
  *regs = caller;
  return Step::kOk;
}

// Follows the frame record [saved fp, return address] at fp: rbp on
// x86-64, x29 on AArch64 (stp x29, x30, [sp, #-16]!; mov x29, sp), the
// caller's sp 16 bytes above it on both. Other callee-saved registers were
// saved who knows where, so they become unknown.
Step FramePointerStep(const StackCopy& stack, RegState* regs) {
  uintptr_t fp, sp, saved_fp, ra;
  if (!regs->Get(kFp, &fp) || !regs->Get(kSp, &sp) || fp % 8 != 0 || fp < sp ||
      !ReadStack(stack, fp, &saved_fp) || !ReadStack(stack, fp + 8, &ra)) {
    return Step::kFailed;
  }
  RegState caller;
  caller.Set(kSp, fp + 16);
  caller.Set(kFp, saved_fp);
  caller.Set(kPc, StripReturnAddress(ra));
#if defined(__aarch64__)
  caller.sp_lower_bound = true;
#endif
  *regs = caller;
  return Step::kOk;
}

// ---------------------------------------------------------------------------
// Loaded objects.

class ModuleCache {
 public:
  // Re-reads the list of objects if one was loaded or unloaded since the last
  // time. info is the first object's, as dl_iterate_phdr reports it.
  void Sync(const dl_phdr_info& info, size_t info_size) {
    const bool has_counters =
        info_size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info.dlpi_subs;
    if (has_counters && valid_ && info.dlpi_adds == adds_ && info.dlpi_subs == subs_) return;
    modules_.clear();
    code_.clear();
    dl_iterate_phdr(AddModule, this);  // the loader lock is recursive
    std::sort(code_.begin(), code_.end(),
              [](const Code& a, const Code& b) { return a.range.start < b.range.start; });
    valid_ = has_counters;
    if (has_counters) {
      adds_ = info.dlpi_adds;
      subs_ = info.dlpi_subs;
    }
  }

  // The object whose code contains pc, or null (JIT code, garbage).
  const Module* Find(uintptr_t pc) const {
    auto it = std::upper_bound(code_.begin(), code_.end(), pc,
                               [](uintptr_t a, const Code& c) { return a < c.range.start; });
    if (it == code_.begin() || pc >= (--it)->range.end) return nullptr;
    return &modules_[it->module];
  }

 private:
  struct Code {
    Range range;  // an executable segment
    size_t module;
  };

  static int AddModule(dl_phdr_info* info, size_t, void* data) {
    auto* self = static_cast<ModuleCache*>(data);
    Module m;
    std::vector<Range> code;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      const Range range{info->dlpi_addr + ph.p_vaddr, info->dlpi_addr + ph.p_vaddr + ph.p_memsz};
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_R)) {
        m.segments.push_back(range);
        if (ph.p_flags & PF_X) code.push_back(range);
      } else if (ph.p_type == PT_GNU_EH_FRAME) {
        m.eh_frame_hdr = range;
      }
    }
    if (!m.Contains(m.eh_frame_hdr.start, m.eh_frame_hdr.end - m.eh_frame_hdr.start)) {
      m.eh_frame_hdr = {};
    }
    for (const Range& r : code) self->code_.push_back({r, self->modules_.size()});
    self->modules_.push_back(std::move(m));
    return 0;
  }

  bool valid_ = false;
  unsigned long long adds_ = 0, subs_ = 0;
  std::vector<Module> modules_;
  std::vector<Code> code_;  // sorted by start
};

// One step from the frame in *regs to its caller. Prefers CFI and falls back
// on the frame pointer where there is none or it can't be applied (a rule
// needing a register we lost). *exact tells whether the pc is exact (first
// frame, or interrupted by a signal) or a return address; it is updated for
// the caller.
Step StepFrame(const ModuleCache& modules, const StackCopy& stack, RegState* regs, bool* exact,
               UnwindMethod* method) {
  const uintptr_t pc = regs->value[kPc];
  // A return address may be the first byte of the next function: look up the call.
  const uintptr_t lookup = *exact ? pc : pc - 1;
  const Module* m = modules.Find(lookup);
  Fde fde;
  if (m != nullptr && FindFde(*m, lookup, &fde)) {
    const Step step = CfiStep(*m, fde, lookup, stack, regs);
    if (step != Step::kFailed) {
      *method = UnwindMethod::kCfi;
      *exact = fde.cie.signal_frame;
      return step;
    }
  }
  *method = UnwindMethod::kFramePointer;
  *exact = false;
  return FramePointerStep(stack, regs);
}

size_t Walk(const ModuleCache& modules, const Registers& start, const StackCopy& stack,
            UnwoundFrame* frames, size_t max_frames) {
  RegState regs;
  regs.Set(kPc, start.pc);
  regs.Set(kSp, start.sp);
  regs.Set(kFp, start.fp);
#if defined(__aarch64__)
  regs.Set(kLr, start.lr);
  for (int i = 0; i < 10; i++) regs.Set(kX19 + i, start.x19_x28[i]);
#else
  regs.Set(kRbx, start.rbx);
  regs.Set(kR12, start.r12);
  regs.Set(kR13, start.r13);
  regs.Set(kR14, start.r14);
  regs.Set(kR15, start.r15);
#endif
  frames[0] = {start.pc, UnwindMethod::kContext};
  size_t n = 1;
  bool exact = true;
  const size_t limit = std::min(max_frames, kMaxFrames);
  while (n < limit) {
    const uintptr_t sp = regs.value[kSp];
    UnwindMethod method;
    if (StepFrame(modules, stack, &regs, &exact, &method) != Step::kOk) break;
    // The stack grows down: a caller's frame is always above its callee's,
    // or level with it when the callee stored nothing (AArch64's leaves,
    // whose return address stays in x30).
    const bool level_allowed = regs.ra_in_register;
    if (regs.value[kPc] == 0 || regs.value[kSp] < sp || (regs.value[kSp] == sp && !level_allowed)) break;
    frames[n++] = {regs.value[kPc], method};
  }
  return n;
}

struct WalkJob {
  const Registers& regs;
  const StackCopy& stack;
  UnwoundFrame* frames;
  size_t max_frames;
  size_t count;
};

// Runs the whole walk in the callback for the first object: dl_iterate_phdr
// holds the loader lock meanwhile, so no object can be unloaded while we read it.
int WalkWithLoaderLocked(dl_phdr_info* info, size_t info_size, void* data) {
  static std::mutex mutex;
  static ModuleCache* cache = new ModuleCache;  // never destroyed: may be in use at exit
  auto* job = static_cast<WalkJob*>(data);
  std::lock_guard<std::mutex> lock(mutex);
  cache->Sync(*info, info_size);
  job->count = Walk(*cache, job->regs, job->stack, job->frames, job->max_frames);
  return 1;
}

}  // namespace

size_t Unwind(const Registers& regs, const StackCopy& stack, UnwoundFrame* frames,
              size_t max_frames) {
  if (max_frames == 0) return 0;
  WalkJob job{regs, stack, frames, max_frames, 0};
  dl_iterate_phdr(WalkWithLoaderLocked, &job);
  return job.count;
}

}  // namespace gmr
