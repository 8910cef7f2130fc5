// The reporter's line to the main thread, for what only that thread has: the
// live configuration and the user sections. The main thread may be stuck, so
// every wait has a deadline, and a late answer is dropped.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace gmr {

// On the main thread: `on_request(id)` is called there for each request; it
// answers with AnswerMainRequest. The channel does not keep the loop alive.
void AttachMainChannel(Napi::Env env, Napi::Function on_request);
void AnswerMainRequest(uint64_t id, std::string json);

enum class MainAnswer { kAnswered, kNotPickedUp, kTimedOut, kNoChannel };

// On the reporter's thread: asks and waits. The main thread must pick the
// request up within pickup_ms and answer within answer_ms after that.
MainAnswer AskMain(int pickup_ms, int answer_ms, std::string* json);

}  // namespace gmr
