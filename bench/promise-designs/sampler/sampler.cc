// Prototype: the JS promiseHooks init hook calls sample(slot); this native
// function takes a few-frame V8 stack sample (no allocation) and keeps the
// creating frame's code address in a plain native array the watchdog reads.
#include <node.h>
#include <v8.h>
#include <v8-profiler.h>
#include <cstdint>

namespace {
constexpr uint32_t kSlots = 1 << 16;
uintptr_t g_site[kSlots];
uint64_t g_calls = 0, g_empty = 0;

// frames: [hook (JS), creator...]; builtins are not JS frames in the sample.
inline void DoSample(v8::Isolate* isolate, uint32_t slot) {
  void* frames[3] = {nullptr, nullptr, nullptr};
  v8::SampleInfo info{};
  v8::RegisterState state;
  state.pc = __builtin_return_address(0);
  state.fp = __builtin_frame_address(0);
  state.sp = __builtin_frame_address(0);
  isolate->GetStackSample(state, frames, 3, &info);
  g_calls++;
  uintptr_t site = info.frames_count > 1 ? reinterpret_cast<uintptr_t>(frames[1]) : 0;
  if (!site) g_empty++;
  g_site[slot & (kSlots - 1)] = site;
}

void SlowSample(const v8::FunctionCallbackInfo<v8::Value>& args) {
  DoSample(args.GetIsolate(), args[0].As<v8::Uint32>()->Value());
}
void SiteOf(const v8::FunctionCallbackInfo<v8::Value>& args) {
  args.GetReturnValue().Set(v8::Number::New(args.GetIsolate(), (double)g_site[args[0].As<v8::Uint32>()->Value() & (kSlots - 1)]));
}
void Noop(const v8::FunctionCallbackInfo<v8::Value>& args) {}
void Stats(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  auto ctx = isolate->GetCurrentContext();
  auto a = v8::Array::New(isolate, 2);
  a->Set(ctx, 0, v8::Number::New(isolate, (double)g_calls)).Check();
  a->Set(ctx, 1, v8::Number::New(isolate, (double)g_empty)).Check();
  args.GetReturnValue().Set(a);
}

void Init(v8::Local<v8::Object> exports, v8::Local<v8::Value>, void*) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  auto ctx = isolate->GetCurrentContext();
  auto set = [&](const char* name, v8::Local<v8::FunctionTemplate> t) {
    exports->Set(ctx, v8::String::NewFromUtf8(isolate, name).ToLocalChecked(), t->GetFunction(ctx).ToLocalChecked()).Check();
  };
  set("sample", v8::FunctionTemplate::New(isolate, SlowSample));
  set("sampleSlow", v8::FunctionTemplate::New(isolate, SlowSample));
  set("noop", v8::FunctionTemplate::New(isolate, Noop));
  set("siteOf", v8::FunctionTemplate::New(isolate, SiteOf));
  set("stats", v8::FunctionTemplate::New(isolate, Stats));
}
}  // namespace
NODE_MODULE_CONTEXT_AWARE(sampler, Init)
