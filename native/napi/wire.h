// What crosses between JS and C++ for JS tasks: the one definition of the main <-> worker wire
// protocol on the C++ side. lib/core/wire.ts states the same constants for JS; the addon exports
// these (binding.wire, wireToJs) and test/wire.test.ts checks that both agree.
//
// Each JS thread that spawns or runs tasks (an endpoint) shares two scratch buffers with the addon:
//   io (JS -> native): a spawn's encoded arguments, a batch of spawn records, a task's result;
//   in (native -> JS): a dispatched task's arguments, a batch of completion records.
// Payloads are lib/core/codec.ts values; all integers little-endian (the addon runs on LE only).
// The records' C++ codec is here too (writeCompletion, readBatchRecord); JS's is in
// lib/runtime/endpoint.ts.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hwsq::wire {

// Task flags, set by JS at spawn; the low byte and the placement bits are kept in the task, the
// low byte reaches the worker's dispatcher with the dispatch bits the addon adds.
constexpr uint32_t kFlagRoot = 1;                // spawned from the main thread (maxQueue, concurrency limit)
constexpr uint32_t kFlagAbortable = 2;           // spawned with an AbortSignal: the task gets an AbortController
// How a spawn with node: 'auto' chose the task's node (lib/numa/memory-affinity.ts): counted once
// the task is queued (affineByMemory / affineFallback in stats()); never passed to the dispatcher.
constexpr uint32_t kFlagAffineMemory = 1u << 16;    // on the node (with Ps) holding its memory
constexpr uint32_t kFlagAffineFallback = 1u << 17;  // no memory used in place, or none resident: no node
constexpr uint32_t kFlagDispatchedMask = 0xff;   // the kept flags the dispatcher sees
constexpr uint32_t kFlagStoredMask = kFlagDispatchedMask | kFlagAffineMemory | kFlagAffineFallback;  // the flags a task keeps
constexpr uint32_t kDispatchLocal = 1u << 8;     // the spawner is the running thread: JS settles the promise itself
constexpr uint32_t kDispatchBuffer = 1u << 9;    // the arguments came in their own Buffer, not in `in`

// Completion codes of a completion record.
constexpr int32_t kCodeOk = 0;      // payload: the encoded value
constexpr int32_t kCodeError = 1;   // payload: the encoded error
constexpr int32_t kCodeExited = 2;  // no payload: the task's worker went away while it ran

// The dispatcher's return value and complete()'s code: r >= 0: ok with r result bytes in io;
// r <= kErrorBase: an error of (kErrorBase - r) bytes in io; or one of the markers below.
constexpr int32_t kResultPending = -1;        // async: complete() follows
constexpr int32_t kErrorBase = -2;            // error with n bytes: kErrorBase - n
constexpr int32_t kResultSettledLocally = -3; // kDispatchLocal: JS settled it, nothing to deliver
constexpr int32_t kResultCompletedByJs = -4;  // JS already called complete() with a Buffer (a result too big for io)

// cancel() / cancelChild(): p >= 0: the task runs on P p (its worker gets onAbort); or:
constexpr int32_t kCancelFinished = -1;  // it already finished: its result (or exit) is on the way
constexpr int32_t kCancelRemoved = -2;   // removed from its queue: it will never run

// Completion record in `in`: [seq f64][code i32][len u32][len bytes], back to back.
constexpr size_t kCompletionSeq = 0, kCompletionCode = 8, kCompletionLen = 12, kCompletionHeader = 16;
// onCompletions(count): count records in `in`; count == kCompletionsBig: one record as
// onCompletions(kCompletionsBig, seq, code, buffer), its payload too big for `in`.
constexpr int32_t kCompletionsBig = -1;

// Spawn-batch record in io (submitMany / spawnMany): [fn u32][flags u32][node i32][len u32][seq f64][len bytes].
constexpr size_t kBatchFn = 0, kBatchFlags = 4, kBatchNode = 8, kBatchLen = 12, kBatchSeq = 16, kBatchHeader = 24;

// A completion record written at p (the caller checked that kCompletionHeader + len bytes fit).
inline void writeCompletion(uint8_t* p, double seq, int32_t code, const uint8_t* bytes, uint32_t len) {
  std::memcpy(p + kCompletionSeq, &seq, 8);
  std::memcpy(p + kCompletionCode, &code, 4);
  std::memcpy(p + kCompletionLen, &len, 4);
  if (len) std::memcpy(p + kCompletionHeader, bytes, len);
}

// A spawn-batch record as read from io; its payload stays in io.
struct BatchRecord {
  uint32_t fn = 0, flags = 0, len = 0;
  int32_t node = -1;
  double seq = 0;
  const uint8_t* bytes = nullptr;  // len bytes; the next record starts right after them
};
// Reads the record at p of a scratch buffer that ends at end: false when it overruns the buffer.
inline bool readBatchRecord(const uint8_t* p, const uint8_t* end, BatchRecord& r) {
  if (static_cast<size_t>(end - p) < kBatchHeader) return false;
  std::memcpy(&r.fn, p + kBatchFn, 4);
  std::memcpy(&r.flags, p + kBatchFlags, 4);
  std::memcpy(&r.node, p + kBatchNode, 4);
  std::memcpy(&r.len, p + kBatchLen, 4);
  std::memcpy(&r.seq, p + kBatchSeq, 8);
  if (r.len > static_cast<size_t>(end - p) - kBatchHeader) return false;
  r.bytes = p + kBatchHeader;
  return true;
}

// The scratch buffers' sizes (allocated by JS; the addon takes their actual lengths).
constexpr size_t kScratchBytes = 256 * 1024;

// binding.wire: the constants above, for the test that compares them with lib/core/wire.ts.
Napi::Object wireToJs(Napi::Env env);

}  // namespace hwsq::wire
