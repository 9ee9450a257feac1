#include "parallelism_js.h"

#include "args_js.h"

namespace hwsq::napi {

std::shared_ptr<ParallelismEvents> ParallelismEvents::create(Napi::Env env, Napi::Value fn) {
  if (!fn.IsFunction()) return nullptr;
  auto ev = std::make_shared<ParallelismEvents>();
  // The finalizer (release, or environment teardown) holds a reference until it ran.
  auto* hold = new std::shared_ptr<ParallelismEvents>(ev);
  ev->tsfn_ = Napi::ThreadSafeFunction::New(env, fn.As<Napi::Function>(), "hwsq.parallelism", 0, 1, hold,
                                            [](Napi::Env, std::shared_ptr<ParallelismEvents>* h) {
                                              {
                                                std::lock_guard<std::mutex> lk((*h)->mu_);
                                                (*h)->live_ = false;
                                              }
                                              delete h;
                                            });
  ev->live_ = true;
  ev->tsfn_.Unref(env);
  return ev;
}

void ParallelismEvents::post(const hwsq::sched::ParallelismChange& c) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!live_) return;
  auto* copy = new hwsq::sched::ParallelismChange(c);
  const napi_status st = tsfn_.NonBlockingCall(copy, [](Napi::Env env, Napi::Function fn, hwsq::sched::ParallelismChange* ch) {
    std::unique_ptr<hwsq::sched::ParallelismChange> own(ch);
    if (env == nullptr) return;  // torn down
    Napi::HandleScope scope(env);
    auto o = Napi::Object::New(env);
    o.Set("previous", ch->previous);
    o.Set("current", ch->current);
    o.Set("source", hwsq::sched::parallelismSourceName(ch->source));
    fn.Call({o});
  });
  if (st != napi_ok) delete copy;
}

void ParallelismEvents::release() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!live_) return;
  live_ = false;
  tsfn_.Release();
}

uint32_t followCgroup(const Napi::Object& config, hwsq::sched::RuntimeOptions& o, const std::shared_ptr<ParallelismEvents>& events) {
  const auto poll = static_cast<uint32_t>(integerField(config, "cgroupPollMs", 0, 0, 3'600'000, "ERR_HWSQ_INVALID_OPTION"));
  if (poll == 0) return 0;
  o.cgroupPollMs = poll;
  Napi::Value root = config.Get("cgroupFsroot");
  if (root.IsString()) o.cgroupFsroot = root.As<Napi::String>().Utf8Value();
  if (events) o.onParallelism = [events](const hwsq::sched::ParallelismChange& c) { events->post(c); };
  return poll;
}

}  // namespace hwsq::napi
