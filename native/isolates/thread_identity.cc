#include "thread_identity.h"

#include <v8.h>

#include "own_context.h"

namespace gmr {

ThreadIdentity ReadThreadIdentity(v8::Isolate* isolate) {
  // The script only reads: nothing here can change what it sees.
  // process.getBuiltinModule: Node 20.16 and later, also where `require` is
  // not in scope (eval workers, ES modules).
  const char* source =
      "(() => { const p = globalThis.process;"
      " const wt = p && typeof p.getBuiltinModule === 'function' && p.getBuiltinModule('node:worker_threads');"
      " const limits = wt && wt.resourceLimits;"
      " return wt ? [wt.threadId, typeof wt.threadName === 'string' ? wt.threadName : '',"
      "   limits && typeof limits.maxOldGenerationSizeMb === 'number' ? limits.maxOldGenerationSizeMb : 0] : null })()";
  return InOwnContext(isolate, ThreadIdentity{}, [&](v8::Local<v8::Context> context, v8::TryCatch& try_catch) {
    ThreadIdentity out;
    v8::Local<v8::Value> result;
    if (!RunScript(isolate, context, source).ToLocal(&result) || !result->IsArray()) {
      // No process.getBuiltinModule (yet), or it cannot load modules yet: a
      // worker still bootstrapping.
      if (try_catch.HasCaught() || (!result.IsEmpty() && result->IsNull())) out.thread_id = kIdentityNotYet;
      return out;
    }
    v8::Local<v8::Array> pair = result.As<v8::Array>();
    v8::Local<v8::Value> id, name, old_mb;
    if (!pair->Get(context, 0).ToLocal(&id) || !id->IsNumber() || !pair->Get(context, 1).ToLocal(&name)) return out;
    out.thread_id = static_cast<int>(id.As<v8::Number>()->Value());
    if (pair->Get(context, 2).ToLocal(&old_mb) && old_mb->IsNumber()) out.max_old_generation_mb = old_mb.As<v8::Number>()->Value();
    v8::String::Utf8Value utf8(isolate, name);
    if (*utf8) out.worker_name = *utf8;
    return out;
  });
}

}  // namespace gmr
