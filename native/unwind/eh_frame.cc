// Parsing .eh_frame: CIEs and FDEs, found through .eh_frame_hdr, and the
// CFA programs run up to the row that applies at a pc. See dwarf.h.

#include <algorithm>
#include <cstring>

#include "dwarf.h"

namespace gmr {
namespace cfi {
namespace {

constexpr size_t kMaxRememberedStates = 16;

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

}  // namespace

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


namespace {

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

}  // namespace

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


}  // namespace cfi
}  // namespace gmr
