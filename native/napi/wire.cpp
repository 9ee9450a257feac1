// binding.wire: the wire protocol's constants as JS sees them (see wire.h).
#include "wire.h"

namespace hwsq::wire {

Napi::Object wireToJs(Napi::Env env) {
  auto o = Napi::Object::New(env);
  auto group = [&](const char* name, std::initializer_list<std::pair<const char*, double>> entries) {
    auto g = Napi::Object::New(env);
    for (const auto& [k, v] : entries) g.Set(k, Napi::Number::New(env, v));
    o.Set(name, g);
  };
  group("flags", {{"ROOT", kFlagRoot}, {"ABORTABLE", kFlagAbortable}, {"LOCAL", kDispatchLocal}, {"BUFFER", kDispatchBuffer},
                   {"AFFINE_MEMORY", kFlagAffineMemory}, {"AFFINE_FALLBACK", kFlagAffineFallback}});
  group("codes", {{"OK", kCodeOk}, {"ERROR", kCodeError}, {"EXITED", kCodeExited}});
  group("result", {{"PENDING", kResultPending}, {"ERROR_BASE", kErrorBase}, {"SETTLED_LOCALLY", kResultSettledLocally},
                   {"COMPLETED_BY_JS", kResultCompletedByJs}});
  group("cancel", {{"FINISHED", kCancelFinished}, {"REMOVED", kCancelRemoved}});
  group("completion", {{"SEQ", kCompletionSeq}, {"CODE", kCompletionCode}, {"LEN", kCompletionLen},
                       {"HEADER", kCompletionHeader}, {"BIG", kCompletionsBig}});
  group("batch", {{"FN", kBatchFn}, {"FLAGS", kBatchFlags}, {"NODE", kBatchNode}, {"LEN", kBatchLen}, {"SEQ", kBatchSeq},
                  {"HEADER", kBatchHeader}});
  group("scratch", {{"BYTES", kScratchBytes}});
  return o;
}

}  // namespace hwsq::wire
