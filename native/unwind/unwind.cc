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

#include "dwarf.h"

namespace gmr {
namespace {

using namespace cfi;  // NOLINT: the unwinder speaks CFI throughout

constexpr size_t kMaxFrames = 1024;        // caps the walk whatever max_frames says
constexpr size_t kMaxExpressionStack = 16;

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

// A word of the thread's stack, from the copy only.
bool ReadStack(const StackCopy& stack, uintptr_t addr, uintptr_t* out) {
  if (stack.data == nullptr || addr < stack.base) return false;
  const uintptr_t offset = addr - stack.base;
  if (offset > stack.size || stack.size - offset < sizeof *out) return false;
  memcpy(out, stack.data + offset, sizeof *out);
  return true;
}

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
  *exact = false;
#if defined(__aarch64__)
  // Only the first frame knows x30. Code without CFI whose frame record does
  // not hold x30 has not laid one (a frameless builtin, a prologue or an
  // epilogue): its caller is in x30 alone, at the same sp and x29. V8's
  // arm64 sampler reads x30 for the same reason. A function that made a
  // call since its record also gets here, with its own address in x30:
  // callers of Unwind drop that frame (UnwindMethod::kLinkRegister).
  uintptr_t lr, fp, record_ra = 0;
  if (regs->Get(kLr, &lr) && (lr = StripReturnAddress(lr)) != 0 && lr != pc &&
      !(regs->Get(kFp, &fp) && ReadStack(stack, fp + 8, &record_ra) &&
        StripReturnAddress(record_ra) == lr)) {
    RegState caller = *regs;
    caller.known &= ~Bit(kLr);
    caller.Set(kPc, lr);
    caller.ra_in_register = true;
    *regs = caller;
    *method = UnwindMethod::kLinkRegister;
    return Step::kOk;
  }
#endif
  *method = UnwindMethod::kFramePointer;
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
