// The context a thread's own scripts run in, whichever context it is in
// when an interrupt comes.
#pragma once

#include <node.h>
#include <v8.h>

namespace gmr {

// On the isolate's thread: the main context of the Node environment whose
// context is current, once that environment has bootstrapped; otherwise an
// empty handle (no context is current, it belongs to no environment, or the
// environment is still being built).
//
// A thread busy inside a vm context has that context current: its globals
// are the application's sandbox, which the library's scripts must neither
// read (a getter there is the application's code) nor change, and where
// `process` and the timers may not even exist.
//
// node::GetMainContext() is not used: an interrupt can come while a worker's
// environment is being built, when its context already names the
// environment but the environment has no main realm yet, and it then
// dereferences null (seen on Node 22 and 24, worker churn). Instead: Node
// gives every vm context its main context's security token, the main
// context's global object, whose creation context is the main context (and
// for the main context itself, its own). That context counts only if it
// belongs to the same environment and its global has `process` as a real own
// property (no interceptor, no getter called): bootstrapping has put it
// there, and a vm sandbox (should a Node give it a token of its own) has none.
inline v8::Local<v8::Context> OwnContext(v8::Isolate* isolate) {
  if (!isolate->InContext()) return {};
  v8::Local<v8::Context> current = isolate->GetCurrentContext();
  node::Environment* env = node::GetCurrentEnvironment(current);
  if (!env) return {};
  v8::Local<v8::Value> token = current->GetSecurityToken();
  v8::Local<v8::Context> own;
  if (!token->IsObject() || !token.As<v8::Object>()->GetCreationContext().ToLocal(&own)) return {};
  if (node::GetCurrentEnvironment(own) != env) return {};
  v8::Local<v8::String> process = v8::String::NewFromUtf8Literal(isolate, "process");
  if (!own->Global()->HasRealNamedProperty(own, process).FromMaybe(false)) return {};
  return own;
}

// On the isolate's thread, between two operations of whatever it runs (an
// interrupt): fn(context, try_catch) in the thread's own context, nothing it
// throws escaping into the interrupted code; `otherwise` when the isolate
// is terminating or no own context is current (a worker still
// bootstrapping, or none at all).
template <typename R, typename Fn>
R InOwnContext(v8::Isolate* isolate, R otherwise, Fn fn) {
  if (isolate->IsExecutionTerminating()) return otherwise;
  v8::HandleScope scope(isolate);
  v8::Local<v8::Context> context = OwnContext(isolate);
  if (context.IsEmpty()) return otherwise;
  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(isolate);
  return fn(context, try_catch);
}

// Compiles and runs `source` in `context`: its value, or empty (it threw).
inline v8::MaybeLocal<v8::Value> RunScript(v8::Isolate* isolate, v8::Local<v8::Context> context, const char* source) {
  v8::Local<v8::String> code;
  v8::Local<v8::Script> script;
  if (!v8::String::NewFromUtf8(isolate, source).ToLocal(&code) || !v8::Script::Compile(context, code).ToLocal(&script))
    return {};
  return script->Run(context);
}

}  // namespace gmr
