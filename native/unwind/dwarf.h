// Call frame information (.eh_frame) as the unwinder reads it: this
// architecture's DWARF register numbers, a loaded object's memory and a
// reader over it, CIEs and FDEs, and the row of rules that says where a
// frame's caller's registers are. Parsing lives in eh_frame.cc; applying a
// row to a thread's registers and stack, in unwind.cc.
//
// Everything here reads a loaded object in place, checked against its mapped
// segments, while the caller holds the loader's lock (unwind.cc).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace gmr {
namespace cfi {

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

struct Range {
  uintptr_t start = 0, end = 0;
  bool Contains(uintptr_t addr, size_t len) const {
    return addr >= start && addr <= end && len <= end - addr;
  }
};


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

// The FDE whose range holds pc, through the object's .eh_frame_hdr (or a
// scan of .eh_frame without one); false when none does.
bool FindFde(const Module& m, uintptr_t pc, Fde* fde);

// The row of fde that applies at pc.
bool FindRow(const Module& m, const Fde& fde, uintptr_t pc, Row* row);

}  // namespace cfi
}  // namespace gmr
